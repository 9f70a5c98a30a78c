"""The service layer: every control-plane operation, once, for the gRPC API (and so the CLI and
the panel). Validation is the config's; storage is the store's; runs are the executor's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import replace
from functools import partial

import trio

from ..base.errors import ConfigError, ConflictError, RegsyncError
from ..config import parse_applied
from ..config.rules import by_target, target_conflict
from ..engine.discovery import Discovery
from ..engine.events import discard
from ..engine.filters import TagSelection, rule_tags
from ..engine.plan import TagPlan
from ..engine.prunerun import PrunePlan
from ..engine.run import Run, open_ports
from ..engine.scope_preview import ScopePreview, preview_scope
from ..monitor.control import TrendControl
from ..notify.control import NotificationControl
from ..oci.port import RegistryPort
from ..registry.factory import open_port
from ..runtime.cron import SchedulePreview
from ..runtime.executor import Executor
from ..runtime.hub import Hub
from ..runtime.scheduler import Scheduler, utc_now
from ..runtime.task_inputs import literal_template, resolved, rule_registries
from ..runtime.watch import WatchItem
from ..settings import Config, GlobalSettings, RegistrySettings, RetrySettings, SyncRule
from ..store.db import Database
from ..store.leases import done_in_chain
from ..store.records import (
    RESULTS_PAGE_DEFAULT,
    ApplyResult,
    ConnectionVerdict,
    DaemonStatus,
    ExecutionQuery,
    ExecutionRecord,
    LogsPage,
    RegistryRecord,
    ResultsPage,
    Stats,
    TaskRecord,
    Trigger,
)
from ..store.repo import Repo

VERSION = "0.1.0"

log = logging.getLogger("regsync.service")


class Control(NotificationControl, TrendControl):
    """Implements `plane.ControlPlane` (and `NotificationPlane`, `TrendPlane`)."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        scheduler: Scheduler,
        hub: Hub,
        *,
        global_settings: Callable[[], GlobalSettings],
        store_location: str,
    ) -> None:
        self._db = db
        self._executor = executor
        self._scheduler = scheduler
        self._hub = hub
        self._global = global_settings
        self._store_location = store_location
        self._started = time.monotonic()
        #: whether this daemon fires the schedules (a shared store's leader; serve sets it)
        self.fires_schedules: Callable[[], bool] = lambda: True

    # registries ---------------------------------------------------------------------------
    async def create_registry(self, settings: RegistrySettings) -> RegistryRecord:
        return await self._db.run(lambda repo: repo.create_registry(settings))

    async def list_registries(self) -> list[RegistryRecord]:
        return await self._db.run(lambda repo: repo.list_registries())

    async def get_registry(self, name: str) -> RegistryRecord:
        return await self._db.run(lambda repo: repo.get_registry(name))

    async def update_registry(
        self, settings: RegistrySettings, *, keep_password: bool
    ) -> RegistryRecord:
        return await self._db.run(
            lambda repo: repo.update_registry(settings, keep_password=keep_password)
        )

    async def delete_registry(self, name: str) -> None:
        await self._db.run(lambda repo: repo.delete_registry(name))

    async def test_registry(self, name: str) -> ConnectionVerdict:
        settings = resolved((await self.get_registry(name)).settings)
        started = time.monotonic()
        once = replace(self._global(), retry=RetrySettings(max_attempts=1))  # a verdict, now
        try:
            async with open_port(settings, once) as port:
                version = await port.ping()
        except RegsyncError as exc:
            reachable = exc.kind not in ("network", "config")
            return ConnectionVerdict(
                ok=False, reachable=reachable, auth_ok=False, message=str(exc),
                error_kind=exc.kind, latency_ms=_ms_since(started),
            )
        return ConnectionVerdict(ok=True, reachable=True, auth_ok=True, api_version=version,
                                 latency_ms=_ms_since(started))

    # tasks --------------------------------------------------------------------------------
    async def create_task(self, rule: SyncRule) -> TaskRecord:
        def create(repo: Repo) -> TaskRecord:
            _owned_target(repo, [rule])
            return repo.create_task(rule)

        task = await self._db.run(create)
        self._scheduler.wake()
        return self._live(task)

    async def list_tasks(self) -> list[TaskRecord]:
        tasks = await self._db.run(lambda repo: repo.list_tasks())
        return [self._live(t) for t in tasks]

    async def get_task(self, name: str) -> TaskRecord:
        return self._live(await self._db.run(lambda repo: repo.get_task(name)))

    async def update_task(self, rule: SyncRule) -> TaskRecord:
        def update(repo: Repo) -> TaskRecord:
            _owned_target(repo, [rule])
            return repo.update_task(rule)

        task = await self._db.run(update)
        self._scheduler.wake()
        return self._live(task)

    async def delete_task(self, name: str) -> None:
        if self._executor.is_running(name):
            raise ConflictError(f"task {name!r} is running: stop it first")
        await self._db.run(lambda repo: repo.delete_task(name))
        self._scheduler.wake()

    async def run_task(self, name: str, *, force_prune: bool = False) -> ExecutionRecord:
        """NOT_FOUND comes from the store's `create_execution`, which reads the task anyway.
        `force_prune`: past the task's prune_max, for this execution."""
        return await self._executor.start(name, Trigger.MANUAL, force_prune=force_prune)

    async def stop_task(self, name: str) -> ExecutionRecord:
        await self.get_task(name)
        return await self._executor.stop(name)

    async def set_task_enabled(self, name: str, enabled: bool) -> TaskRecord:
        task = await self._db.run(lambda repo: repo.set_task_enabled(name, enabled))
        self._scheduler.wake()
        return self._live(task)

    async def plan_task(
        self, name: str
    ) -> tuple[TagSelection, list[TagPlan], PrunePlan | None]:
        rule, registries = await self._db.run(lambda repo: rule_registries(repo, name))
        global_ = self._global()
        async with open_ports(registries, global_, list(registries)) as ports:
            run = Run(global_, registries, sink=discard, ports=ports,
                      platforms=self._executor.platforms)
            selection, plans = await run.plan(rule)
            return selection, plans, await run.plan_prune(rule, selection, plans)

    async def preview_schedule(self, expression: str, count: int) -> SchedulePreview:
        return self._scheduler.preview(expression, count)

    async def preview_tags(self, rule: SyncRule, tags: Sequence[str] | None) -> TagSelection:
        """The tags the filters keep; for a glob source (listed), the matched repositories'
        tags as `repository:tag`, the first PREVIEW_REPOSITORIES repositories of the catalog."""
        if tags is None:
            settings = resolved((await self.get_registry(rule.source.registry)).settings)
            async with open_port(settings, self._global()) as port:
                if rule.source.is_glob:
                    return await _glob_preview(port, rule)
                tags = await port.list_tags(rule.source.repository)
        # linear-time regexes, but a million tags times many patterns is still seconds of CPU
        return await trio.to_thread.run_sync(rule_tags, rule, tags)

    async def preview_repositories(self, rule: SyncRule, limit: int) -> ScopePreview:
        """The first `limit` repositories a glob source matches, with their tag counts.

        Raises:
            ConfigError: the source is not a glob. NoCatalogError: the registry has no catalog.
        """
        if not rule.source.is_glob:
            raise ConfigError("spec.source.repository: not a glob (no * or **): one repository"
                              " is previewed by PreviewTags")
        settings = resolved((await self.get_registry(rule.source.registry)).settings)
        async with open_port(settings, self._global()) as port:
            return await preview_scope(port, rule, limit)

    # executions ---------------------------------------------------------------------------
    async def list_executions(
        self, query: ExecutionQuery
    ) -> tuple[list[ExecutionRecord], int | None]:
        records, next_id = await self._db.run(lambda repo: repo.list_executions(query))
        return [self._live_execution(r) for r in records], next_id

    async def get_execution(
        self, id: int, *, after: int = 0, limit: int = RESULTS_PAGE_DEFAULT
    ) -> tuple[ExecutionRecord, ResultsPage]:
        def read(repo: Repo) -> tuple[ExecutionRecord, ResultsPage]:
            record, page = repo.get_execution(id), repo.results_page(id, after=after, limit=limit)
            if after or record.scope is None:
                return record, page
            return record, replace(page, changes=repo.scope_changes(id))

        record, page = await self._db.run(read)
        return self._live_execution(record), page

    async def get_logs(self, id: int, *, offset: int, limit: int) -> LogsPage:
        return await self._db.run(lambda repo: repo.logs_page(id, offset=offset, limit=limit))

    async def retry_failed(self, id: int) -> ExecutionRecord:
        record, failed = await self._db.run(
            lambda repo: (repo.get_execution(id), repo.failed_tags(id))
        )
        if not failed:
            raise ConflictError(f"execution {id} has no failed tags to retry")
        # tag "" is the rule itself (its tags could not be listed): retry all of it
        only = None if "" in failed else failed
        return await self._executor.start(record.task, Trigger.RETRY, parent_id=id, only_tags=only)

    async def resume_interrupted(self) -> list[ExecutionRecord]:
        """After a crash: mark what was running as interrupted and continue each one."""
        interrupted = await self._db.run(lambda repo: repo.interrupt_running())
        resumed: list[ExecutionRecord] = []
        for old in interrupted:
            done = await self._db.run(partial(done_in_chain, execution_id=old.id))
            try:
                resumed.append(await self._executor.start(
                    old.task, Trigger.RESUME, parent_id=old.id, except_tags=done,
                    force_prune=old.force_prune,
                ))
            except ConflictError as exc:  # another daemon on the store resumed it first
                log.info("not resuming execution %s: %s", old.id, exc)
        return resumed

    # the daemon ---------------------------------------------------------------------------
    async def stats(self) -> Stats:
        stats = await self._db.run(lambda repo: repo.stats(utc_now()))
        if self._executor.shared:  # the store's count: every daemon's runs
            return stats
        return replace(stats, running=len(self._executor.running()))

    async def status(self) -> DaemonStatus:
        return DaemonStatus(
            version=VERSION,
            uptime_seconds=time.monotonic() - self._started,
            running=tuple(self._executor.running()),
            next_runs=tuple(self._scheduler.next_runs()) if self.fires_schedules() else (),
            store=self._store_location,
            daemon=await self._db.run(lambda repo: repo.daemon_label()),
            fires_schedules=self.fires_schedules(),
        )

    async def apply(self, text: str, *, source: str) -> ApplyResult:
        known = [r.name for r in await self.list_registries()]
        # CPU-bound (a megabyte of YAML takes seconds): never on the trio thread
        parse = partial(parse_applied, text, source=source, known_registries=known)
        config = await trio.to_thread.run_sync(parse)
        if config.notifications:  # not stored by apply_config: refused rather than dropped
            raise ConfigError(
                f"{source}: notifications: Apply does not take webhooks; add them with "
                "`regsyncctl notifications add` or in the daemon's own --config file")
        result = await self._db.run(lambda repo: apply_config(repo, config))
        self._scheduler.wake()
        return result

    def watch(
        self, execution_id: int | None, *, logs: bool
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchItem]]:
        return self._watch(execution_id, logs=logs)

    @asynccontextmanager
    async def _watch(
        self, execution_id: int | None, *, logs: bool
    ) -> AsyncIterator[AsyncIterator[WatchItem]]:
        """Live events; one finished execution is its final state, then the end of the stream.

        Subscribing comes first: an execution live at that moment will send its final event.
        """
        async with self._hub.watch(execution_id, logs=logs) as items:
            if execution_id is not None and not self._hub.is_live(execution_id):
                record = await self._db.run(lambda repo: repo.get_execution(execution_id))
                first = WatchItem(record.id, record.task, execution=record)
                # another daemon runs it: the store feed brings its events here
                remote = self._executor.shared and record.status.active
                yield _then(first, items) if remote else _once(first)
            else:
                yield items

    # helpers ------------------------------------------------------------------------------
    def _live(self, task: TaskRecord) -> TaskRecord:
        last = task.last_execution
        return replace(
            task,
            next_run=self._scheduler.next_run(task.rule),
            running=self._executor.is_running(task.name) or (
                self._executor.shared and task.running),  # run by another daemon
            last_execution=self._live_execution(last) if last else None,
        )

    def _live_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        if record.status.active and (ended := self._executor.ended(record.id)) is not None:
            return ended  # the store refused its end: say how it ended, not "running"
        counters = self._hub.live_counters(record.id) if record.status.active else None
        return replace(record, counters=counters) if counters else record


def apply_config(repo: Repo, config: Config) -> ApplyResult:
    """Upsert every registry and rule of a config by name (one transaction: all or nothing)."""
    regs_new: list[str] = []
    regs_upd: list[str] = []
    dropped: list[str] = []
    tasks_new: list[str] = []
    tasks_upd: list[str] = []
    for settings in config.registries.values():
        # a Config's values are literal (any ${VAR} already read, by load_config only)
        settings = replace(settings, password=literal_template(settings.password))
        record = repo.upsert_registry(settings)
        (regs_new if record is None else regs_upd).append(settings.name)
        if record is not None and record.password_dropped:
            dropped.append(settings.name)
    for rule in config.rules:
        (tasks_new if repo.upsert_task(rule) else tasks_upd).append(rule.name)
    _owned_target(repo, config.rules)  # against the stored tasks too (it rolls all back)
    return ApplyResult(tuple(regs_new), tuple(regs_upd), tuple(tasks_new), tuple(tasks_upd),
                       tuple(dropped))


def _owned_target(repo: Repo, rules: Sequence[SyncRule]) -> None:
    """ConfigError when one of `rules` would share its target with a pruning task (or prune
    another task's target): config.target_conflict against every stored task."""
    writers = by_target(t.rule for t in repo.list_tasks())  # one pass: Apply takes 10,000
    for rule in rules:
        why = target_conflict(rule, writers)
        if why is not None:
            raise ConfigError(f"task {rule.name!r}: {why}")


async def _once(item: WatchItem) -> AsyncIterator[WatchItem]:
    yield item


async def _then(item: WatchItem, items: AsyncIterator[WatchItem]) -> AsyncIterator[WatchItem]:
    yield item
    async for more in items:
        yield more


#: repositories whose tags a glob's preview lists (each is one tag listing)
PREVIEW_REPOSITORIES = 50


async def _glob_preview(port: RegistryPort, rule: SyncRule) -> TagSelection:
    """The first PREVIEW_REPOSITORIES repositories' tags; the catalog is read no further than
    one more match (a row says that more repositories match)."""
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    previewed = 0
    async with aclosing(Discovery(port, rule).repositories()) as repositories:
        async for one in repositories:
            if previewed == PREVIEW_REPOSITORIES:
                why = (f"more repositories match; only the first {PREVIEW_REPOSITORIES} are"
                       " previewed (a run covers them all)")
                dropped.append(("...:", why))
                break
            previewed += 1
            repository = one.source.repository
            listed = await port.list_tags(repository)
            selection = await trio.to_thread.run_sync(rule_tags, one, listed)
            kept += (f"{repository}:{tag}" for tag in selection.kept)
            dropped += ((f"{repository}:{tag}", why) for tag, why in selection.dropped)
    return TagSelection(tuple(kept), tuple(dropped))


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


__all__ = ["Control", "apply_config"]
