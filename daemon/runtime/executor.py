"""Running executions: the bounded pool, stop, and the record of every tag as it finishes.

An execution is one task's sync run. Its events go to the hub at once and to the store in
batches (one DB hop per flush, not per event). A task never runs twice at once; at most
`max_running` executions copy at the same time, the others wait queued.

A store that cannot be written (disk full, read-only) fails the execution it happens in, with
that reason; the daemon keeps serving. What could not be recorded (the last results, the end
itself) is owed: retried in the background until the store takes it, so no execution is left
"running" once the admin has freed space.

On a shared store (`shared`: several daemons on one PostgreSQL) `start` only queues the execution
in the store; whichever daemon's coordinator (cluster.py) claims it runs it, through `adopt`, with
the tags its trigger allows recomputed from the store. A stop for an execution another daemon
runs is asked through the store (`stop`); one whose lease another daemon took over is `drop`ped
without recording anything (its new owner records it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

import trio

from ..base.errors import ConflictError, RegsyncError, StoreError, first_regsync_error
from ..engine.events import (
    Counters,
    Event,
    LogEvent,
    TagFinished,
)
from ..engine.platform_memory import PlatformMemory
from ..engine.run import sync
from ..engine.slots import BlobSlots
from ..engine.upload_memory import UploadMemory
from ..settings import GlobalSettings, RegistrySettings, SyncRule
from ..store.db import Database
from ..store.leases import Claim
from ..store.records import ExecutionRecord, ExecutionStatus, Trigger
from ..store.repo import Repo
from .hub import Hub
from .logformat import current_execution
from .pending import Pending
from .task_inputs import rule_registries
from .watch import WatchItem

log = logging.getLogger("regsync.executor")

_FLUSH_EVERY = 0.5  # seconds between store writes and progress events of one execution
STOP_GRACE = 2.0  # seconds a stop or shutdown waits for an execution to record itself
STOP_ROUND = 1.0  # seconds until another daemon's coordinator sees a stop asked in the store
OWED_RETRY = (0.5, 5.0)  # seconds between tries to record an end the store refused: first, most
KEEP_PER_TASK = 200  # ended executions kept per task (with their results and logs)


@dataclass(slots=True)
class _Owed:
    """The end of an execution the store refused to record; written once it takes it."""

    record: ExecutionRecord
    pending: Pending
    counters: Counters
    status: ExecutionStatus
    error: str
    lock: trio.Lock = field(default_factory=trio.Lock)  # the background retry or a new run
    finished: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(slots=True)
class _Running:
    record: ExecutionRecord
    scope: trio.CancelScope
    done: trio.Event
    interrupted: bool = False
    counters: Counters = field(default_factory=Counters)  # the engine's, once it has started
    claimed: bool = False  # a shared store's claim: already running in the store
    lost: bool = False  # another daemon took it over: record nothing more


class Executor:
    """Starts, tracks and stops executions; owns their nursery."""

    def __init__(
        self,
        db: Database,
        hub: Hub,
        *,
        global_settings: Callable[[], GlobalSettings],
        max_running: int = 2,
        platforms: PlatformMemory | None = None,
        shared: bool = False,
    ) -> None:
        self._db = db
        self.shared = shared
        self.max_running = max_running
        #: called when an execution was queued in the store (the coordinator claims it)
        self.on_queued: Callable[[], None] = lambda: None
        self._hub = hub
        self._global = global_settings
        self._slots = trio.Semaphore(max_running)
        self._blobs: BlobSlots | None = None  # global.concurrency, daemon-wide
        #: platforms of single-platform images, learnt by any execution, for all of them
        self.platforms = platforms or PlatformMemory()
        #: which target registries refuse large one-piece bodies, learnt once
        self.uploads = UploadMemory()
        self._running: dict[str, _Running] = {}
        self._owed: dict[str, _Owed] = {}  # by task
        self._closing = False
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def is_running(self, task: str) -> bool:
        return task in self._running

    def running(self) -> list[ExecutionRecord]:
        return [r.record for r in self._running.values()]

    def running_ids(self) -> set[int]:
        return {r.record.id for r in self._running.values()}

    def free(self) -> int:
        """How many more executions this daemon may run now (`--max-running`); none once it
        shuts down (the runs it hands over are for the other daemons)."""
        if self._closing:
            return 0
        return max(0, self.max_running - len(self._running))

    def adopt(self, claim: Claim) -> None:
        """Run an execution this daemon claimed in the shared store (already running there)."""
        if self._nursery is None:
            raise RuntimeError("Executor.run has not started")
        record = claim.record
        running = _Running(record, trio.CancelScope(), trio.Event(), claimed=True)
        # a run of the task this daemon lost (taken over while it was frozen) may still be
        # winding down: the new one starts once it has, and the old one's end leaves it alone
        previous = self._running.get(record.task)
        self._running[record.task] = running
        self._publish(record)
        self._nursery.start_soon(self._after, previous, running, claim)

    async def _after(self, previous: _Running | None, running: _Running, claim: Claim) -> None:
        if previous is not None:
            await previous.done.wait()
        await self._execute(running, claim.only_tags, claim.except_tags)

    def cancel(self, execution_id: int, *, lost: bool = False) -> None:
        """Stop one of this daemon's executions (asked through the store); `lost`: another
        daemon took it over, so nothing of it is recorded any more."""
        for running in self._running.values():
            if running.record.id == execution_id:
                running.lost = running.lost or lost
                running.scope.cancel()

    def ended(self, execution_id: int) -> ExecutionRecord | None:
        """How an execution ended when the store refused to record it (the store still says
        "running"); None for any other."""
        for owed in self._owed.values():
            if owed.record.id == execution_id:
                return replace(owed.record, status=owed.status, finished=owed.finished,
                               counters=replace(owed.counters), error=owed.error)
        return None

    async def start(
        self,
        task: str,
        trigger: Trigger,
        *,
        parent_id: int | None = None,
        only_tags: Collection[str] | None = None,
        except_tags: Collection[str] | None = None,
        force_prune: bool = False,
        tick: float | None = None,
    ) -> ExecutionRecord:
        """Queue an execution of `task` (`force_prune`: past its prune_max, this once).
        ConflictError if it runs already; AlreadyFiredError when it is for cron `tick` (UNIX
        seconds) and that tick was fired already. On a shared store, the tags come from the
        store when a daemon claims it (the same sets)."""
        if self._nursery is None:
            raise RuntimeError("Executor.run has not started")
        if task in self._running:
            raise ConflictError(
                f"task {task!r} is already running (execution {self._running[task].record.id})"
            )
        if (owed := self._owed.get(task)) is not None:
            await self._settle(owed)  # the store must have the last end before a new start
        record = await self._db.run(lambda repo: repo.create_execution(
            task, trigger, parent_id, tick=tick, for_any=self.shared, force_prune=force_prune))
        if self.shared:
            self._publish(record)  # watchers see it queued; whoever claims it publishes on:
            self._hub.forget(record.id)  # not live here (another daemon may end it unseen)
            self.on_queued()
            return record
        running = _Running(record, trio.CancelScope(), trio.Event())
        self._running[task] = running
        self._publish(record)
        self._nursery.start_soon(self._execute, running, only_tags, except_tags)
        return record

    async def stop(self, task: str) -> ExecutionRecord:
        """Cancel the task's execution and wait (up to STOP_GRACE) until it is recorded."""
        running = self._running.get(task)
        if running is None and self.shared:
            return await self._stop_elsewhere(task)
        if running is None:
            raise ConflictError(f"task {task!r} is not running")
        running.scope.cancel()
        with trio.move_on_after(STOP_GRACE):
            await running.done.wait()
        return await self._db.run(lambda repo: repo.get_execution(running.record.id))

    async def _stop_elsewhere(self, task: str) -> ExecutionRecord:
        """Ask the store to stop the task's execution (queued for any daemon, or run by another
        one) and wait until its daemon has recorded it, up to STOP_GRACE past its next round."""
        record = await self._db.run(lambda repo: repo.request_stop(task))
        with trio.move_on_after(STOP_GRACE + STOP_ROUND):
            while record.status.active:
                await trio.sleep(0.05)
                record = await self._db.run(partial(_get, id=record.id))
        return record

    async def shutdown(self, grace: float) -> None:
        """Daemon stopping: give executions `grace` seconds, then record them as interrupted
        (on a shared store, with a resume queued for the other daemons)."""
        self._closing = True
        with trio.move_on_after(grace):
            while self._running:
                await next(iter(self._running.values())).done.wait()
        for running in list(self._running.values()):
            running.interrupted = True
            running.scope.cancel()
        with trio.move_on_after(STOP_GRACE):
            for running in list(self._running.values()):
                await running.done.wait()

    async def _execute(
        self,
        running: _Running,
        only_tags: Collection[str] | None,
        except_tags: Collection[str] | None,
    ) -> None:
        record = running.record
        current_execution.set((record.task, record.id))  # this task's own context: log lines
        pending = Pending()
        status, error = ExecutionStatus.FAILED, ""
        try:
            with running.scope:
                async with self._slots:
                    if not running.claimed:
                        record = running.record = await self._db.run(
                            lambda repo: repo.mark_running(record.id))
                        self._publish(record)
                    rule, registries = await self._db.run(
                        lambda repo: rule_registries(repo, record.task))
                    status, error = await self._sync(
                        running, registries, rule, pending, only_tags, except_tags)
            if running.scope.cancelled_caught:
                status = (ExecutionStatus.INTERRUPTED if running.interrupted
                          else ExecutionStatus.STOPPED)
                error = "interrupted by daemon shutdown" if running.interrupted else "stopped"
        except RegsyncError as exc:  # e.g. the task or a registry vanished, a bad ca_file
            error = str(exc)
        except Exception:  # a bug: record it; the daemon keeps serving
            log.exception("execution %s crashed", record.id)
            error = "internal error (see the daemon log)"
        finally:
            try:
                if running.lost:
                    log.warning("execution %s: another daemon took it over (this daemon's lease "
                                "lapsed); dropped here", record.id)
                else:
                    with trio.CancelScope(shield=True):
                        await self._record_end(record, pending, running.counters, status, error)
            except ConflictError as exc:  # taken over between two rounds: its new owner records
                log.warning("execution %s: not recorded here: %s", record.id, exc)
            except StoreError as exc:
                log.error("execution %s ended (%s) but the store refused the record: %s; "
                          "retrying until it takes it", record.id, status.value, exc)
                owed = _Owed(record, pending, running.counters, status, error)
                self._owed[record.task] = owed
                assert self._nursery is not None
                self._nursery.start_soon(self._record_owed, owed)
            finally:  # whatever the store said, the task is no longer running (this run)
                if self._running.get(record.task) is running:
                    del self._running[record.task]
                running.done.set()
                self.platforms.save()  # when something was learnt: a small file

    async def _record_end(
        self, record: ExecutionRecord, pending: Pending, counters: Counters,
        status: ExecutionStatus, error: str,
    ) -> None:
        """Write what is pending and the end. Raises: StoreError, with `pending` kept whole."""
        await pending.flush(self._db, record.id, counters)
        handover = self.shared and status is ExecutionStatus.INTERRUPTED
        final = await self._db.run(
            lambda repo: _finish(repo, record.id, status, counters, error, handover=handover))
        self._publish(final)

    async def _record_owed(self, owed: _Owed) -> None:
        """Retry until the store takes the end (or the daemon stops: then the next start finds
        the execution running and marks it interrupted)."""
        delay, most = OWED_RETRY
        while owed.record.task in self._owed:
            await trio.sleep(delay)
            try:
                await self._settle(owed)
            except StoreError:
                delay = min(delay * 2, most)

    async def _settle(self, owed: _Owed) -> None:
        """Record an owed end now. Raises: StoreError, saying which execution waits for it."""
        async with owed.lock:
            if self._owed.get(owed.record.task) is not owed:
                return  # the other caller did it
            record = owed.record
            try:
                with trio.CancelScope(shield=True):
                    await self._record_end(record, owed.pending, owed.counters, owed.status,
                                           owed.error)
            except StoreError as exc:
                raise StoreError(
                    f"task {record.task!r}: execution {record.id} ended but the store cannot "
                    f"record it yet ({exc})") from None
            except ConflictError as exc:  # a shared store: another daemon took it over
                log.warning("execution %s: not recorded here: %s", record.id, exc)
            else:
                log.info("execution %s: its end is recorded now", record.id)
            del self._owed[record.task]

    async def _sync(
        self,
        running: _Running,
        registries: Mapping[str, RegistrySettings],
        rule: SyncRule,
        pending: Pending,
        only_tags: Collection[str] | None,
        except_tags: Collection[str] | None,
    ) -> tuple[ExecutionStatus, str]:
        record = running.record
        global_ = self._global()

        def sink(event: Event, counters: Counters) -> None:
            if running.counters is not counters:  # the engine's own: stop and crash keep them
                running.counters = counters
                self._hub.track(record.id, counters)
            pending.take(event)
            if isinstance(event, TagFinished):
                self._publish_item(record, tag=event.result)
            elif isinstance(event, LogEvent):
                self._publish_item(record, log=event)

        if self._blobs is None:
            self._blobs = BlobSlots(global_.concurrency)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._flusher, record, pending, running)
                report = await sync(
                    [rule], registries, global_, sink=sink, slots=self._blobs,
                    platforms=self.platforms, uploads=self.uploads,
                    force_prune=running.record.force_prune,
                    only_tags={rule.name: only_tags} if only_tags is not None else None,
                    except_tags={rule.name: except_tags} if except_tags is not None else None,
                )
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # one reason for the record, not a group
            first = first_regsync_error(group)
            if first is None:
                raise
            raise first from None
        if report.ok:
            return ExecutionStatus.SUCCEEDED, ""
        first_failure = report.failures[0]
        failed = report.counters.tags_failed
        return ExecutionStatus.FAILED, f"{failed} failed; first: {first_failure.reason}"

    async def _flusher(
        self, record: ExecutionRecord, pending: Pending, running: _Running
    ) -> None:
        while True:
            await trio.sleep(_FLUSH_EVERY)
            if pending.dirty:
                with trio.CancelScope(shield=True):  # a StoreError ends the run with it
                    await pending.flush(self._db, record.id, running.counters)
                self._publish_item(record, progress=replace(running.counters),
                                   current_tag=pending.current_tag)

    def _publish(self, record: ExecutionRecord) -> None:
        self._hub.publish(WatchItem(record.id, record.task, execution=record))

    def _publish_item(self, record: ExecutionRecord, **fields: object) -> None:
        self._hub.publish(WatchItem(record.id, record.task, **fields))  # type: ignore[arg-type]


def _get(repo: Repo, *, id: int) -> ExecutionRecord:
    return repo.get_execution(id)


def _finish(
    repo: Repo, id: int, status: ExecutionStatus, counters: Counters, error: str, *,
    handover: bool = False,
) -> ExecutionRecord:
    """Record the end of an execution, and forget its task's oldest history beyond KEEP_PER_TASK
    (only that task's history grew); `handover`: queue its resume for the other daemons."""
    record = repo.finish_execution(id, status, counters, error)
    if handover:
        repo.hand_over(id)
    repo.prune_history(record.task, keep=KEEP_PER_TASK)
    return record
