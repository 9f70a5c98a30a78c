"""One run: several rules, their tags through a bounded pool, one result per tag.

The shape is trio's fixed worker pool: producers (one per rule) list and filter tags into a
bounded channel, `tags_in_flight` workers copy them. Blob transfers across all of it share the
`global.concurrency` blob slots, fairly between source registries (engine/slots.py). A failing
tag or rule never stops the others.

Memory stays flat in the number of repositories and tags: a glob's catalog is walked a page at
a time into a bounded channel that LISTINGS_IN_FLIGHT listers read, and results leave as events
(the daemon writes them to its store as they come); the report keeps counters and the first
KEPT_FAILURES failures, never every result (unless a caller asks: `keep_results`).

Tag names are the source registry's data: a listed name that is not a tag by the distribution
grammar is never requested; it is reported (escaped) as skipped, with error kind "invalid-name",
and logged once per rule as a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import replace

import trio

from ..base.errors import RegsyncError
from ..oci.port import RegistryPort
from ..oci.reference import canonical_repository
from ..registry.factory import open_port
from ..registry.retry import RetryPolicy
from ..settings import Endpoint, GlobalSettings, RegistrySettings, SyncRule
from .blobs import BlobMover, BlobOutcome
from .copy import TagCopier
from .discovery import Discovery, left_out
from .events import (
    BytesMoved,
    Event,
    EventSink,
    LogEvent,
    Outcome,
    RepositoriesListed,
    RepositoryMatched,
    TagFinished,
    TagResult,
    TagsPlanned,
    TagStarted,
)
from .filters import INVALID_TAG, TagSelection, rule_tags
from .plan import PlatformFilter, TagPlan, failed
from .platform_memory import PlatformMemory
from .prunerun import PrunePlan, PruneStage
from .referrers import ReferrerFollower
from .report import KEPT_FAILURES, RunReport
from .side import Side
from .slots import BlobSlots
from .throughput import Floor
from .upload_memory import UploadMemory

log = logging.getLogger("regsync.engine")

#: repositories of a glob rule whose tags are listed (then queued) at the same time
LISTINGS_IN_FLIGHT = 8

#: one tag to copy: the copier of its repository, the source repository, the tag
_Item = tuple[TagCopier, str, str]


class Run:
    """Executes rules against registries opened once per run (shared by every rule using them)."""

    def __init__(
        self,
        global_: GlobalSettings,
        registries: Mapping[str, RegistrySettings],
        *,
        sink: EventSink,
        ports: Mapping[str, RegistryPort],
        only_tags: Mapping[str, Collection[str]] | None = None,
        except_tags: Mapping[str, Collection[str]] | None = None,
        slots: BlobSlots | None = None,
        platforms: PlatformMemory | None = None,
        uploads: UploadMemory | None = None,
        force_prune: bool = False,
        keep_results: bool = False,
    ) -> None:
        self._settings = registries
        self._keep_results = keep_results
        self._platforms = platforms or PlatformMemory()
        self._sink = sink
        self._registries = ports
        self._only_tags = only_tags
        self._except_tags = except_tags or {}
        self.report = RunReport()
        g = global_
        self._blobs = BlobMover(
            # `global.concurrency` is global: a daemon passes the same slots to all its runs
            slots=slots or BlobSlots(g.concurrency),
            floor=Floor(g.limits.min_throughput, g.limits.throughput_window),
            retry=RetryPolicy.from_settings(g.retry),
            on_bytes=lambda n: self._emit(BytesMoved(n)),
            on_outcome=self._count_blob,
            memory=uploads,
        )
        self._tags_in_flight = g.tags_in_flight
        #: which source registries have the Referrers API, learnt once per run
        self._referrers_api: dict[str, bool] = {}
        #: pruning rules' repositories, pruned after every copy (engine/prunerun.py)
        self._prunes = PruneStage(force=force_prune, log=self._log, side=self._side,
                                  finish=self._finish, fail=self._fail_rule)
        #: a glob rule's repositories as its last plan found them (for plan_prune)
        self._planned: dict[str, list[SyncRule]] = {}

    async def execute(self, rules: Sequence[SyncRule]) -> RunReport:
        send, receive = trio.open_memory_channel[_Item](self._tags_in_flight)
        async with trio.open_nursery() as nursery:
            for _ in range(self._tags_in_flight):
                nursery.start_soon(self._worker, receive.clone())
            async with send, trio.open_nursery() as producers:
                for rule in rules:
                    producers.start_soon(self._produce, rule, send.clone())
            await receive.aclose()
        await self._prunes.run(self.report.failed_by_rule)  # after all copies, never before
        self.report.finished = time.monotonic()
        return self.report

    async def _produce(self, rule: SyncRule, send: trio.MemorySendChannel[_Item]) -> None:
        if rule.prune:
            self._prunes.want(rule)
        async with send:
            if not rule.source.is_glob:
                await self._produce_one(rule, send)
                return
            # tag listings of several repositories at once: over a WAN each is a round trip
            found, listed = trio.open_memory_channel[SyncRule](LISTINGS_IN_FLIGHT)
            async with trio.open_nursery() as nursery:
                for _ in range(LISTINGS_IN_FLIGHT):
                    nursery.start_soon(self._lister, listed.clone(), send.clone())
                await listed.aclose()
                async with found:
                    await self._walk(rule, found)

    async def _walk(self, rule: SyncRule, found: trio.MemorySendChannel[SyncRule]) -> None:
        """Hand a glob's repositories to the listers as the catalog pages come."""
        walk = Discovery(self._registries[rule.source.registry], rule)
        try:
            async with aclosing(walk.repositories()) as repositories:
                async for one in repositories:
                    self.report.repositories += 1
                    self._emit(RepositoryMatched(rule.name, one.source.repository))
                    await found.send(one)
        except RegsyncError as exc:  # no catalog, or the walk broke off: one failed item
            self._fail_rule(rule, "", exc)
        finally:
            self._scope_logs(rule, walk)
        if walk.complete:
            self._emit(RepositoriesListed(rule.name, walk.matched))

    async def _lister(self, listed: trio.MemoryReceiveChannel[SyncRule],
                      send: trio.MemorySendChannel[_Item]) -> None:
        async with listed, send:
            async for one in listed:
                await self._produce_one(one, send)

    async def _produce_one(self, rule: SyncRule, send: trio.MemorySendChannel[_Item]) -> None:
        repository = rule.source.repository
        try:
            copier = self.copier(rule)
            selection = await self.select(rule, copier)
        except RegsyncError as exc:  # the repository as a whole failed: it counts as one item
            self._fail_rule(rule, repository, exc)
            return
        self._skip_invalid(rule.name, selection, repository)
        tags = selection.kept
        if rule.prune:  # the whole selection stays, whatever a retry or resume copies
            self._prunes.add(rule, selection.kept)
        if self._only_tags is not None:  # retry: only the tags that failed
            wanted = set(self._only_tags.get(rule.name, ()))
            # not the whole repository (its listing failed), nor the whole rule (its catalog)
            if f"{repository}:" not in wanted and "" not in wanted:
                tags = tuple(t for t in tags if t in wanted or f"{repository}:{t}" in wanted)
        done = set(self._except_tags.get(rule.name, ()))  # resume: not what is finished
        tags = tuple(t for t in tags if t not in done and f"{repository}:{t}" not in done)
        self._log("info", f"{repository}: {len(tags)} tags to sync"
                  f" ({len(selection.dropped)} filtered out)", rule.name)
        self.report.counters.tags_total += len(tags)
        self._emit(TagsPlanned(rule.name, len(tags)))
        for tag in tags:
            await send.send((copier, repository, tag))

    def _fail_rule(self, rule: SyncRule, repository: str, exc: RegsyncError) -> None:
        self.report.counters.tags_total += 1
        self._finish(TagResult(rule.name, "", Outcome.FAILED, reason=str(exc),
                               error_kind=exc.kind, repository=repository))

    def _scope_logs(self, rule: SyncRule, walk: Discovery) -> None:
        """Logged once a walk ends: how many matched, the catalog names skipped and why."""
        found = walk.summary()
        for line in left_out(found):
            self._log("warning", line, rule.name)
        so_far = "" if walk.complete else " so far"
        self._log("info", f"{walk.matched} repositories match {rule.source.repository!r}{so_far}"
                  f" ({found.excluded} excluded)", rule.name)

    async def repositories(self, rule: SyncRule) -> list[SyncRule]:
        """A glob rule's plain rules, one per repository its source matches in the catalog now
        (for a plan, which shows them all; a run streams them)."""
        walk = Discovery(self._registries[rule.source.registry], rule)
        try:
            return [one async for one in walk.repositories()]
        finally:
            self._scope_logs(rule, walk)

    def _skip_invalid(self, rule: str, selection: TagSelection, repository: str = "") -> None:
        invalid = [tag for tag, why in selection.dropped if why == INVALID_TAG]
        if not invalid:
            return
        shown = ", ".join(f"'{tag}'" for tag in invalid[:5]) + (", ..." if len(invalid) > 5 else "")
        self._log("warning", f"{len(invalid)} listed names are not valid tags, skipped and never"
                  f" requested: {shown}", rule)
        self.report.counters.tags_total += len(invalid)
        self.report.invalid_names += len(invalid)
        for tag in invalid:
            self._finish(TagResult(rule, tag, Outcome.SKIPPED, reason=INVALID_TAG,
                                   error_kind="invalid-name", repository=repository))

    async def _worker(self, receive: trio.MemoryReceiveChannel[_Item]) -> None:
        async with receive:
            async for copier, repository, tag in receive:
                self._emit(TagStarted(copier.rule, tag))
                try:
                    result = await copier.copy_tag(tag)
                except Exception as exc:  # a bug must cost one tag, not the run
                    log.exception("[%s] %s: unexpected error", copier.rule, tag)
                    result = TagResult(copier.rule, tag, Outcome.FAILED, error_kind="internal",
                                       reason=f"internal error ({type(exc).__name__}); see the log")
                self._finish(replace(result, repository=repository))

    def copier(self, rule: SyncRule) -> TagCopier:
        def log(level: str, message: str) -> None:
            self._log(level, message, rule.name)

        def make(platform_filter: PlatformFilter) -> TagCopier:
            return TagCopier(
                rule=rule.name,
                source=self._side(rule.source),
                target=self._side(rule.target),
                platforms=platform_filter,
                blobs=self._blobs,
                log=log,
                memory=self._platforms,
            )

        platform_filter = PlatformFilter(rule.architectures, rule.parsed_platforms)
        copier = make(platform_filter)
        if rule.referrers:  # referrers are copied whole: no platform filter speaks about them
            copier.referrers = ReferrerFollower(
                make(PlatformFilter()), log,
                on_copied=lambda tag, count: self._referrers_copied(rule.name, tag, count),
                artifact_types=rule.referrer_types, platforms=platform_filter,
                api_known=self._referrers_api)
        return copier

    def _side(self, endpoint: Endpoint) -> Side:
        host = self._settings[endpoint.registry].host
        return Side(self._registries[endpoint.registry],
                    canonical_repository(host, endpoint.repository))

    async def select(self, rule: SyncRule, copier: TagCopier | None = None) -> TagSelection:
        """The rule's tags; the listing also tells `copier`'s referrers which referrer tags
        exist (so that absent ones cost no request)."""
        source = self._side(rule.source)
        tags = await source.registry.list_tags(source.repository)
        if copier is not None and isinstance(copier.referrers, ReferrerFollower):
            copier.referrers.listed(tags)
        return rule_tags(rule, tags)

    async def plan(self, rule: SyncRule) -> tuple[TagSelection, list[TagPlan]]:
        """The dry run of one rule: filter, then HEAD both sides of each kept tag.

        A glob rule is planned per matched repository, its tags shown as `repository:tag`
        (neither has a ":"), in repository order.

        Raises:
            RegsyncError: a listing failed (a glob's source without a catalog: NoCatalogError).
        """
        if not rule.source.is_glob:
            return await self._plan_one(rule)
        repositories = self._planned[rule.name] = await self.repositories(rule)
        planned_by: dict[str, tuple[TagSelection, list[TagPlan]]] = {}
        limiter = trio.CapacityLimiter(LISTINGS_IN_FLIGHT)

        async def plan_one(one: SyncRule) -> None:
            async with limiter:
                try:
                    planned_by[one.source.repository] = await self._plan_one(one)
                except RegsyncError as exc:  # that repository fails (as "repository:"), not all
                    planned_by[one.source.repository] = (
                        TagSelection((), ()), [failed("", f"[{exc.kind}] {exc}")])

        async with trio.open_nursery() as nursery:
            for one in repositories:
                nursery.start_soon(plan_one, one)
        kept: list[str] = []
        dropped: list[tuple[str, str]] = []
        plans: list[TagPlan] = []
        for one in repositories:
            repository = one.source.repository
            selection, planned = planned_by[repository]
            kept += (f"{repository}:{tag}" for tag in selection.kept)
            dropped += ((f"{repository}:{tag}", why) for tag, why in selection.dropped)
            plans += (replace(p, tag=f"{repository}:{p.tag}") for p in planned)
        return TagSelection(tuple(kept), tuple(dropped)), plans

    async def plan_prune(self, rule: SyncRule, selection: TagSelection,
                         plans: Sequence[TagPlan]) -> PrunePlan | None:
        """What pruning would delete after the run `plan(rule)` planned (None: the rule does
        not prune). Reads the target only."""
        if not rule.prune:
            return None
        if not rule.source.is_glob:
            return await self._prunes.plan(rule, selection.kept, plans)
        return await self._prunes.plan_glob(self._planned.get(rule.name, []), selection, plans)

    async def _plan_one(self, rule: SyncRule) -> tuple[TagSelection, list[TagPlan]]:
        copier = self.copier(rule)
        selection = await self.select(rule, copier)
        plans: dict[str, TagPlan] = {}
        limiter = trio.CapacityLimiter(self._tags_in_flight)

        async def one(tag: str) -> None:
            async with limiter:
                plans[tag] = await copier.plan_tag(tag)

        async with trio.open_nursery() as nursery:
            for tag in selection.kept:
                nursery.start_soon(one, tag)
        return selection, [plans[tag] for tag in selection.kept]

    def _finish(self, result: TagResult) -> None:
        if self._keep_results:
            self.report.results.append(result)
        self.report.counters.count(result)
        if result.outcome is Outcome.FAILED:
            failed = self.report.failed_by_rule
            failed[result.rule] = failed.get(result.rule, 0) + 1
            if len(self.report.failures) < KEPT_FAILURES:
                self.report.failures.append(result)
            where = f"{result.tag}: " if result.tag else ""
            self._log("error", f"{where}{result.reason}", result.rule)
        self._emit(TagFinished(result))

    def _referrers_copied(self, rule: str, tag: str, count: int) -> None:
        self.report.counters.referrers_copied += count
        self._log("info", f"{tag}: referrers: {count} copied", rule)

    def _count_blob(self, outcome: BlobOutcome, size: int) -> None:
        counters = self.report.counters
        if outcome is BlobOutcome.COPIED:
            counters.blobs_copied += 1
            counters.bytes_copied += size
        elif outcome is BlobOutcome.MOUNTED:
            counters.blobs_mounted += 1
        else:
            counters.blobs_skipped += 1

    def _log(self, level: str, message: str, rule: str = "") -> None:
        self._emit(LogEvent(level, message, rule))

    def _emit(self, event: Event) -> None:
        self._sink(event, self.report.counters)


#: opens the port of one registry, from its settings, for the whole of a run
OpenPort = Callable[[RegistrySettings, GlobalSettings], AbstractAsyncContextManager[RegistryPort]]


def registries_for(rules: Sequence[SyncRule]) -> list[str]:
    """Names of the registries the rules touch, in first-use order."""
    names: dict[str, None] = {}
    for rule in rules:
        names.setdefault(rule.source.registry)
        names.setdefault(rule.target.registry)
    return list(names)


@asynccontextmanager
async def open_ports(
    registries: Mapping[str, RegistrySettings],
    global_: GlobalSettings,
    names: Sequence[str],
    open_port: OpenPort = open_port,
) -> AsyncIterator[dict[str, RegistryPort]]:
    """One port per registry for the whole run (shared by every rule using it)."""
    async with AsyncExitStack() as stack:
        ports: dict[str, RegistryPort] = {}
        for name in names:
            ports[name] = await stack.enter_async_context(open_port(registries[name], global_))
        yield ports


async def sync(
    rules: Sequence[SyncRule],
    registries: Mapping[str, RegistrySettings],
    global_: GlobalSettings,
    *,
    sink: EventSink,
    open_port: OpenPort = open_port,
    only_tags: Mapping[str, Collection[str]] | None = None,
    except_tags: Mapping[str, Collection[str]] | None = None,
    slots: BlobSlots | None = None,
    platforms: PlatformMemory | None = None,
    uploads: UploadMemory | None = None,
    force_prune: bool = False,
    keep_results: bool = False,
) -> RunReport:
    """Sync `rules` once (`registries` holds at least the ones they name): the entry point
    `regsyncd once` and the daemon's workers share."""
    async with open_ports(registries, global_, registries_for(rules), open_port) as ports:
        run = Run(global_, registries, sink=sink, ports=ports, only_tags=only_tags,
                  except_tags=except_tags, slots=slots, platforms=platforms, uploads=uploads,
                  force_prune=force_prune, keep_results=keep_results)
        return await run.execute(rules)
