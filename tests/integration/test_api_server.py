"""The gRPC transport end to end: a real ApiServer in trio, real grpc clients in threads.

The ControlPlane here is a small dict-backed fake: these tests are about the bridge (every RPC
crosses it, errors become the right status codes, Watch streams fast and cancels through to trio,
the token is enforced), not about what the real plane decides.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import trio
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from regsync.daemon.api import ApiServer, ApiSettings
from regsync.daemon.api.bridge import TrioPortal, open_asyncio_thread
from regsync.daemon.api.server import SERVICES
from regsync.daemon.base.errors import (
    ConfigError,
    ConflictError,
    DuplicateItemError,
    NetworkError,
    UnknownItemError,
)
from regsync.daemon.config import parse_config
from regsync.daemon.engine.events import Counters, LogEvent, Outcome, TagResult
from regsync.daemon.engine.filters import TagSelection
from regsync.daemon.engine.plan import TagPlan, Verb
from regsync.daemon.engine.prune import NOT_SELECTED, Deletion
from regsync.daemon.engine.prunerun import PrunePlan
from regsync.daemon.engine.scope_preview import RepositoryPreview, ScopePreview
from regsync.daemon.runtime.cron import SchedulePreview, preview
from regsync.daemon.runtime.watch import WatchItem
from regsync.daemon.settings import RegistrySettings, SyncRule
from regsync.daemon.store.records import (
    ApplyResult,
    ConnectionVerdict,
    DaemonStatus,
    ExecutionQuery,
    ExecutionRecord,
    ExecutionStatus,
    LogsPage,
    RegistryRecord,
    ResultsPage,
    ScheduledRun,
    Stats,
    TaskRecord,
    Trigger,
)
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.certs import self_signed

pytestmark = pytest.mark.integration

T = TypeVar("T")
NOON = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
SECRET = "hunter2-do-not-leak"
FLOOD = 5_000  # events Watch(execution_id=1) sends
FOREVER = 2  # Watch(execution_id=2) never ends; it records its cancellation
SLOW_STATS = 0.3  # seconds GetStats takes when `slow` is set


# The fake control plane -------------------------------------------------------------------------


class FakePlane:
    """Just enough behaviour to tell each status code apart."""

    def __init__(self) -> None:
        self.registries: dict[str, RegistryRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.executions: dict[int, ExecutionRecord] = {}
        self.watch_cancelled = trio.Event()
        self.watching = trio.Event()
        self.slow = False
        self.hang = False
        self.hang_cancelled = trio.Event()
        self.preview_calls: list[tuple[SyncRule, Sequence[str] | None]] = []
        self.forced_prunes: list[bool] = []

    # registries

    async def create_registry(self, settings: RegistrySettings) -> RegistryRecord:
        if settings.name in self.registries:
            raise DuplicateItemError(f"registry {settings.name!r} exists already")
        self.registries[settings.name] = RegistryRecord(settings)
        return self.registries[settings.name]

    async def list_registries(self) -> list[RegistryRecord]:
        return [self.registries[name] for name in sorted(self.registries)]

    async def get_registry(self, name: str) -> RegistryRecord:
        if name == "boom":
            raise RuntimeError(f"database exploded, password was {SECRET}")
        if name not in self.registries:
            raise UnknownItemError(f"no registry named {name!r}")
        return self.registries[name]

    async def update_registry(
        self, settings: RegistrySettings, *, keep_password: bool
    ) -> RegistryRecord:
        old = await self.get_registry(settings.name)
        if keep_password:
            settings = replace(settings, password=old.settings.password)
        self.registries[settings.name] = RegistryRecord(settings)
        return self.registries[settings.name]

    async def delete_registry(self, name: str) -> None:
        await self.get_registry(name)
        users = [t.name for t in self.tasks.values() if name in (t.rule.source.registry,)]
        if users:
            raise ConflictError(f"registry {name!r} is used by tasks: {', '.join(users)}")
        del self.registries[name]

    async def test_registry(self, name: str) -> ConnectionVerdict:
        await self.get_registry(name)
        if name == "down":
            raise NetworkError("connection refused", registry=name)
        return ConnectionVerdict(True, True, True, "registry/2.0", latency_ms=1.5)

    # tasks

    async def create_task(self, rule: SyncRule) -> TaskRecord:
        if rule.name in self.tasks:
            raise DuplicateItemError(f"task {rule.name!r} exists already")
        self.tasks[rule.name] = TaskRecord(rule, next_run=NOON)
        return self.tasks[rule.name]

    async def list_tasks(self) -> list[TaskRecord]:
        return [self.tasks[name] for name in sorted(self.tasks)]

    async def get_task(self, name: str) -> TaskRecord:
        if name not in self.tasks:
            raise UnknownItemError(f"no task named {name!r}")
        return self.tasks[name]

    async def update_task(self, rule: SyncRule) -> TaskRecord:
        record = await self.get_task(rule.name)
        self.tasks[rule.name] = replace(record, rule=rule)
        return self.tasks[rule.name]

    async def delete_task(self, name: str) -> None:
        if (await self.get_task(name)).running:
            raise ConflictError(f"task {name!r} is running")
        del self.tasks[name]

    def _start(self, task: str, trigger: Trigger, parent: int | None = None) -> ExecutionRecord:
        record = ExecutionRecord(
            id=len(self.executions) + 1,
            task=task,
            trigger=trigger,
            status=ExecutionStatus.RUNNING,
            started=NOON,
            counters=Counters(tags_total=3),
            parent_id=parent,
        )
        self.executions[record.id] = record
        self.tasks[task] = replace(self.tasks[task], running=True, last_execution=record)
        return record

    async def run_task(self, name: str, *, force_prune: bool = False) -> ExecutionRecord:
        if (await self.get_task(name)).running:
            raise ConflictError(f"task {name!r} is already running")
        self.forced_prunes.append(force_prune)
        return self._start(name, Trigger.MANUAL)

    async def stop_task(self, name: str) -> ExecutionRecord:
        record = await self.get_task(name)
        if not record.running or record.last_execution is None:
            raise ConflictError(f"task {name!r} is not running")
        stopped = replace(
            record.last_execution,
            status=ExecutionStatus.FAILED,
            finished=NOON + datetime.timedelta(minutes=1),
            counters=Counters(tags_total=3, tags_copied=2, tags_failed=1),
            error="1 tag failed",
        )
        self.executions[stopped.id] = stopped
        self.tasks[name] = replace(record, running=False, last_execution=stopped)
        return stopped

    async def set_task_enabled(self, name: str, enabled: bool) -> TaskRecord:
        record = await self.get_task(name)
        self.tasks[name] = replace(record, rule=replace(record.rule, enabled=enabled))
        return self.tasks[name]

    async def plan_task(
        self, name: str
    ) -> tuple[TagSelection, list[TagPlan], PrunePlan | None]:
        await self.get_task(name)
        selection = TagSelection(kept=("1.0", "1.1"), dropped=(("1.0-rc", "excluded by 'rc'"),))
        plans = [
            TagPlan("1.0", Verb.SKIP, "unchanged", "sha256:a", "sha256:a"),
            TagPlan("1.1", Verb.COPY, "new tag", "sha256:b"),
        ]
        prune = PrunePlan((Deletion("0.9", "sha256:c", NOT_SELECTED),
                           Deletion("old", "sha256:a", NOT_SELECTED)),
                          {"old": "not deleted: shares sha256:a"}, ("a note",))
        return selection, plans, prune

    async def preview_tags(self, rule: SyncRule, tags: Sequence[str] | None) -> TagSelection:
        self.preview_calls.append((rule, tags))
        kept = tuple(t for t in (tags or ("1.0", "2.0")) if t.startswith("1"))
        return TagSelection(kept=kept, dropped=())

    async def preview_repositories(self, rule: SyncRule, limit: int) -> ScopePreview:
        found = (RepositoryPreview("team-a/web", "dr/web", tags=3, kept=2),
                 RepositoryPreview("team-a/gone", "dr/gone", error="[not-found] gone"))
        return ScopePreview(found[:limit], truncated=limit < len(found), limit=limit)

    async def preview_schedule(self, expression: str, count: int) -> SchedulePreview:
        return preview(expression, datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), count)

    # executions

    async def list_executions(
        self, query: ExecutionQuery
    ) -> tuple[list[ExecutionRecord], int | None]:
        found = [
            e
            for e in sorted(self.executions.values(), key=lambda e: -e.id)
            if (query.task in (None, e.task))
            and (not query.statuses or e.status in query.statuses)
            and (query.before_id is None or e.id < query.before_id)
        ]
        page = found[: query.limit]
        return page, (page[-1].id if len(found) > query.limit else None)

    async def get_execution(
        self, id: int, *, after: int = 0, limit: int = 1000
    ) -> tuple[ExecutionRecord, ResultsPage]:
        if id not in self.executions:
            raise UnknownItemError(f"no execution {id}")
        results = (
            TagResult("nginx", "1.0", Outcome.COPIED, "sha256:a"),
            TagResult("nginx", "1.1", Outcome.FAILED, reason="refused", error_kind="auth"),
        )
        return self.executions[id], ResultsPage(results, None, len(results))

    async def get_logs(self, id: int, *, offset: int, limit: int) -> LogsPage:
        await self.get_execution(id)
        lines = [LogEvent("info", f"line {n}", time=1000.0 + n) for n in range(10)]
        return LogsPage(tuple(lines[offset:][:limit]), len(lines))

    async def retry_failed(self, id: int) -> ExecutionRecord:
        record, _ = await self.get_execution(id)
        if record.status is not ExecutionStatus.FAILED:
            raise ConflictError(f"execution {id} has no failed tags")
        return self._start(record.task, Trigger.RETRY, parent=id)

    # the daemon

    async def stats(self) -> Stats:
        if self.slow:
            await trio.sleep(SLOW_STATS)
        return Stats(tasks_total=len(self.tasks), registries_total=len(self.registries))

    async def status(self) -> DaemonStatus:
        if self.hang:
            try:
                await trio.sleep_forever()
            finally:
                self.hang_cancelled.set()
        running = tuple(e for e in self.executions.values() if e.status.active)
        return DaemonStatus("0.1.0", 12.5, running, (ScheduledRun("nginx", NOON),), "/tmp/x.db")

    async def apply(self, text: str, *, source: str) -> ApplyResult:
        config = parse_config(text, source=source, env={})
        return ApplyResult(registries_created=tuple(config.registries))

    @asynccontextmanager
    async def watch(
        self, execution_id: int | None, *, logs: bool
    ) -> AsyncIterator[AsyncIterator[WatchItem]]:
        if execution_id not in (None, 1, FOREVER):
            raise UnknownItemError(f"no execution {execution_id}")
        yield self._events(execution_id, logs)

    async def _events(self, execution_id: int | None, logs: bool) -> AsyncIterator[WatchItem]:
        if execution_id == FOREVER:
            try:
                yield WatchItem(FOREVER, "nginx", progress=Counters(tags_total=1))
                self.watching.set()
                await trio.sleep_forever()
            finally:  # trio.Cancelled, delivered from the client's cancel
                self.watch_cancelled.set()
        for n in range(FLOOD):
            if logs and n % 2:
                yield WatchItem(1, "nginx", log=LogEvent("info", f"event {n}"))
            else:
                yield WatchItem(1, "nginx", progress=Counters(tags_copied=n), current_tag=str(n))


# Harness ----------------------------------------------------------------------------------------


class Client:
    """Blocking grpc stubs, each call run in a worker thread so trio keeps serving."""

    def __init__(self, address: str, *, token: str | None = None, credentials: Any = None):
        self.address = address
        if credentials is None:
            self.channel = grpc.insecure_channel(address)
        else:
            options = [("grpc.ssl_target_name_override", "localhost")]
            self.channel = grpc.secure_channel(address, credentials, options=options)
        self.metadata = [("authorization", f"Bearer {token}")] if token else None
        self.registries = rpc.RegistryServiceStub(self.channel)
        self.tasks = rpc.TaskServiceStub(self.channel)
        self.executions = rpc.ExecutionServiceStub(self.channel)
        self.control = rpc.ControlServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def __call__(self, method: Callable[..., T], request: Any) -> T:
        def call() -> T:
            return method(request, metadata=self.metadata, timeout=10)

        return await trio.to_thread.run_sync(call)

    async def fails(self, method: Callable[..., Any], request: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            await self(method, request)
        return info.value


@asynccontextmanager
async def serving(plane: FakePlane, **settings: Any) -> AsyncIterator[tuple[Client, trio.Nursery]]:
    settings.setdefault("listen", "127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        address = await nursery.start(ApiServer(plane, ApiSettings(**settings)).run)
        client = Client(address, token=settings.get("token"))
        try:
            yield client, nursery
        finally:
            client.channel.close()
            nursery.cancel_scope.cancel()


def listing(method: Callable[..., Any]) -> Callable[..., list[Any]]:
    """A server-streaming stub method as a call that returns every message."""
    return lambda request, **options: list(method(request, **options))


def spec(name: str = "nginx", **changes: Any) -> pb.TaskSpec:
    message = pb.TaskSpec(
        name=name,
        source=pb.Endpoint(registry="hub", repository="library/nginx"),
        target=pb.Endpoint(registry="local", repository="mirror/nginx"),
        tags=pb.TagFilter(include=[r"^1\.\d+$"], latest=2),
        architectures=["amd64"],
        enabled=True,
        cron_expression="0 2 * * *",
        referrers=True,  # replies state it; unset in a request means the same
    )
    for key, value in changes.items():
        if isinstance(value, Message):
            getattr(message, key).CopyFrom(value)
        else:
            setattr(message, key, value)
    return message


async def with_registries(client: Client) -> None:
    for name in ("hub", "local"):
        await client(
            client.registries.CreateRegistry,
            pb.RegistrySpec(name=name, url=f"https://{name}.example"),
        )


# Unary RPCs -------------------------------------------------------------------------------------


async def test_registry_rpcs_keep_passwords_write_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(FakePlane()) as (client, _):
        r = client.registries
        created = await client(
            r.CreateRegistry,
            pb.RegistrySpec(name="hub", url="https://Hub.Example/", username="u", password=SECRET),
        )
        assert (created.url, created.password_set) == ("https://hub.example", True)
        assert SECRET not in str(created)

        kept = await client(
            r.UpdateRegistry, pb.RegistrySpec(name="hub", url="http://h:5000", username="u")
        )
        assert (kept.url, kept.password_set) == ("http://h:5000", True)
        removed = await client(
            r.UpdateRegistry, pb.RegistrySpec(name="hub", url="http://h:5000", password="")
        )
        assert removed.password_set is False

        listed = await client(r.ListRegistries, pb.ListRegistriesRequest())
        assert [x.name for x in listed.registries] == ["hub"]
        assert (await client(r.GetRegistry, pb.NameRequest(name="hub"))).url == "http://h:5000"
        verdict = await client(r.TestRegistry, pb.NameRequest(name="hub"))
        assert (verdict.ok, verdict.api_version, verdict.latency_ms) == (True, "registry/2.0", 1.5)

        dup = await client.fails(r.CreateRegistry, pb.RegistrySpec(name="hub", url="https://x"))
        assert dup.code() == grpc.StatusCode.ALREADY_EXISTS
        await client(r.DeleteRegistry, pb.NameRequest(name="hub"))
        gone = await client.fails(r.GetRegistry, pb.NameRequest(name="hub"))
        assert gone.code() == grpc.StatusCode.NOT_FOUND and "hub" in gone.details()
    assert SECRET not in caplog.text


async def test_invalid_specs_are_invalid_argument_naming_the_field() -> None:
    async with serving(FakePlane()) as (client, _):
        bad_url = await client.fails(
            client.registries.CreateRegistry, pb.RegistrySpec(name="x", url="ftp://x", qps=-1)
        )
        assert bad_url.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "registry.url: must start with https://" in bad_url.details()
        assert "registry.qps: must be a number greater than 0" in bad_url.details()
        half = await client.fails(
            client.registries.CreateRegistry,
            pb.RegistrySpec(name="x", url="https://x", password=SECRET),
        )
        assert "registry.username: is required" in half.details()
        assert SECRET not in half.details()

        await with_registries(client)
        regex = pb.TagFilter(include=["ok", "(unclosed"])
        bad = await client.fails(client.tasks.CreateTask, spec(tags=regex))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "task.tags.include[1]: invalid regular expression '(unclosed'" in bad.details()
        unknown = spec(target=pb.Endpoint(registry="lokal", repository="m/n"))
        missing = await client.fails(client.tasks.CreateTask, unknown)
        assert "task.target.registry: unknown registry 'lokal'" in missing.details()
        assert "did you mean 'local'" in missing.details()


async def test_preview_repositories_is_bounded() -> None:
    async with serving(FakePlane()) as (client, _):
        await with_registries(client)
        glob = spec(source=pb.Endpoint(registry="hub", repository="team-a/*"),
                    target=pb.Endpoint(registry="local", repository="dr/*"))
        call = client.tasks.PreviewRepositories
        whole = await client(call, pb.PreviewRepositoriesRequest(spec=glob))
        assert whole.limit == 50 and not whole.truncated
        assert [(r.source, r.target, r.tags, r.kept, r.error) for r in whole.repositories] == [
            ("team-a/web", "dr/web", 3, 2, ""), ("team-a/gone", "dr/gone", 0, 0, "[not-found] gone")]
        assert (await client(call, pb.PreviewRepositoriesRequest(spec=glob, limit=10**6))).limit \
            == 200
        cut = await client(call, pb.PreviewRepositoriesRequest(spec=glob, limit=1))
        assert cut.truncated and len(cut.repositories) == 1
        negative = await client.fails(call, pb.PreviewRepositoriesRequest(spec=glob, limit=-1))
        assert negative.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "limit: must not be negative" in negative.details()


async def test_task_rpcs() -> None:
    plane = FakePlane()
    async with serving(plane) as (client, _):
        t = client.tasks
        await with_registries(client)
        created = await client(t.CreateTask, spec())
        assert created.spec == spec() and created.next_run.ToDatetime(datetime.UTC) == NOON
        assert (await client.fails(t.CreateTask, spec())).code() == grpc.StatusCode.ALREADY_EXISTS

        updated = await client(t.UpdateTask, spec(cron_expression="@daily"))
        assert updated.spec.cron_expression == "@daily"
        assert (await client(t.DisableTask, pb.NameRequest(name="nginx"))).spec.enabled is False
        assert (await client(t.EnableTask, pb.NameRequest(name="nginx"))).spec.enabled is True
        assert [x.spec.name for x in (await client(t.ListTasks, pb.ListTasksRequest())).tasks] == [
            "nginx"
        ]

        run = await client(t.RunTask, pb.NameRequest(name="nginx"))
        assert (run.id, run.trigger, run.status) == (
            1,
            pb.TRIGGER_MANUAL,
            pb.EXECUTION_STATUS_RUNNING,
        )
        again = await client.fails(t.RunTask, pb.NameRequest(name="nginx"))
        assert again.code() == grpc.StatusCode.FAILED_PRECONDITION and "running" in again.details()
        busy = await client.fails(client.registries.DeleteRegistry, pb.NameRequest(name="hub"))
        assert busy.code() == grpc.StatusCode.FAILED_PRECONDITION and "nginx" in busy.details()
        got = await client(t.GetTask, pb.NameRequest(name="nginx"))
        assert got.running and got.last_execution.id == 1
        stopped = await client(t.StopTask, pb.NameRequest(name="nginx"))
        assert stopped.status == pb.EXECUTION_STATUS_FAILED and stopped.HasField("finished")

        plan = await client(t.PlanTask, pb.NameRequest(name="nginx"))
        assert [(p.tag, p.action) for p in plan.tags] == [("1.0", "skip"), ("1.1", "copy")]
        assert plan.dropped[0].reason == "excluded by 'rc'"
        assert [(d.tag, d.digest, d.reason, d.blocked) for d in plan.deletions] == [
            ("0.9", "sha256:c", NOT_SELECTED, ""),
            ("old", "sha256:a", NOT_SELECTED, "not deleted: shares sha256:a"),
        ]
        assert list(plan.prune_notes) == ["a note"]
        forced = await client(t.RunTask, pb.NameRequest(name="nginx", force_prune=True))
        await client(t.StopTask, pb.NameRequest(name="nginx"))
        assert forced.status == pb.EXECUTION_STATUS_RUNNING
        assert plane.forced_prunes == [False, True]
        preview = await client(
            t.PreviewTags,
            pb.PreviewTagsRequest(
                spec=pb.TaskSpec(tags=pb.TagFilter(semver=">=1")), tags=["1.2", "2.0"]
            ),
        )
        assert list(preview.kept) == ["1.2"]
        rule, tags = plane.preview_calls[-1]
        assert (rule.tags.semver, tags) == (">=1", ["1.2", "2.0"])

        await client(t.DeleteTask, pb.NameRequest(name="nginx"))
        gone = await client.fails(t.GetTask, pb.NameRequest(name="nginx"))
        assert gone.code() == grpc.StatusCode.NOT_FOUND


async def test_execution_rpcs() -> None:
    async with serving(FakePlane()) as (client, _):
        e, t = client.executions, client.tasks
        await with_registries(client)
        await client(t.CreateTask, spec())
        for _ in range(3):
            await client(t.RunTask, pb.NameRequest(name="nginx"))
            await client(t.StopTask, pb.NameRequest(name="nginx"))

        page = await client(e.ListExecutions, pb.ListExecutionsRequest(task="nginx", limit=2))
        assert [x.id for x in page.executions] == [3, 2] and page.next_before_id == 2
        rest = await client(e.ListExecutions, pb.ListExecutionsRequest(before_id=2))
        assert [x.id for x in rest.executions] == [1] and rest.next_before_id == 0
        running = pb.ListExecutionsRequest(status=[pb.EXECUTION_STATUS_RUNNING])
        assert not (await client(e.ListExecutions, running)).executions
        negative = await client.fails(e.ListExecutions, pb.ListExecutionsRequest(limit=-1))
        assert negative.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit" in negative.details()

        detail = await client(e.GetExecution, pb.ExecutionRequest(id=1))
        assert detail.execution.counters.tags_failed == 1
        assert [r.error_kind for r in detail.tags] == ["", "auth"]
        logs = await client(e.GetLogs, pb.LogsRequest(execution_id=1, offset=8))
        assert [line.message for line in logs.lines] == ["line 8", "line 9"]
        assert logs.lines[0].time == 1008.0

        retry = await client(e.RetryFailed, pb.ExecutionRequest(id=1))
        assert (retry.trigger, retry.parent_id) == (pb.TRIGGER_RETRY, 1)
        missing = await client.fails(e.GetExecution, pb.ExecutionRequest(id=99))
        assert missing.code() == grpc.StatusCode.NOT_FOUND and "99" in missing.details()


async def test_control_rpcs_and_error_mapping(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(FakePlane()) as (client, _):
        c = client.control
        await with_registries(client)
        assert (await client(c.GetStats, pb.StatsRequest())).registries_total == 2
        status = await client(c.GetStatus, pb.StatusRequest())
        assert (status.version, status.next_runs[0].task) == ("0.1.0", "nginx")
        yaml_text = 'version: "1.0"\nregistries:\n  a: {url: "https://a"}\n'
        applied = await client(c.Apply, pb.ApplyRequest(yaml=yaml_text, source="mine.yaml"))
        assert list(applied.registries_created) == ["a"]
        bad = await client.fails(c.Apply, pb.ApplyRequest(yaml="version: 7\n", source="mine.yaml"))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "mine.yaml" in bad.details()

        await client(
            client.registries.CreateRegistry, pb.RegistrySpec(name="down", url="https://d")
        )
        down = await client.fails(client.registries.TestRegistry, pb.NameRequest(name="down"))
        assert down.code() == grpc.StatusCode.FAILED_PRECONDITION and "'down'" in down.details()

        internal = await client.fails(client.registries.GetRegistry, pb.NameRequest(name="boom"))
        assert internal.code() == grpc.StatusCode.INTERNAL
        assert SECRET not in internal.details() and "daemon's log" in internal.details()
    assert "database exploded" in caplog.text  # the details went to the log


# Watch ------------------------------------------------------------------------------------------


async def test_watch_streams_many_events_fast() -> None:
    async with serving(FakePlane()) as (client, _):

        def follow() -> tuple[list[pb.WatchEvent], float]:
            start = time.perf_counter()
            events = list(client.control.Watch(pb.WatchRequest(execution_id=1, logs=True)))
            return events, time.perf_counter() - start

        events, seconds = await trio.to_thread.run_sync(follow)
    assert len(events) == FLOOD
    assert [e.WhichOneof("event") for e in events[:3]] == ["progress", "log", "progress"]
    assert events[-2].progress.tags_copied == FLOOD - 2 and events[-2].current_tag == str(FLOOD - 2)
    assert events[-1].log.message == f"event {FLOOD - 1}"
    rate = FLOOD / seconds
    print(f"\nWatch: {FLOOD} events in {seconds:.2f} s = {rate:,.0f} events/s")
    assert rate > 500  # grpc itself carries ~3k/s here (2 cores): see the bridge test


async def test_client_cancelling_watch_cancels_the_trio_iterator() -> None:
    plane = FakePlane()
    async with serving(plane) as (client, _):
        stream = client.control.Watch(pb.WatchRequest(execution_id=FOREVER))
        first = await trio.to_thread.run_sync(next, stream)
        assert first.progress.tags_total == 1
        await plane.watching.wait()
        assert not plane.watch_cancelled.is_set()
        stream.cancel()
        with trio.fail_after(5):
            await plane.watch_cancelled.wait()


async def test_client_deadline_cancels_the_trio_call() -> None:
    plane = FakePlane()
    plane.hang = True
    async with serving(plane) as (client, _):

        def call() -> None:
            client.control.GetStatus(pb.StatusRequest(), timeout=0.2)

        with pytest.raises(grpc.RpcError) as info:
            await trio.to_thread.run_sync(call)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        with trio.fail_after(5):
            await plane.hang_cancelled.wait()


async def test_portal_streams_in_batches() -> None:
    """The bridge alone, without grpc: while the consumer is busy, events pile up in the trio
    channel and cross together (one hop per batch), none lost and in order."""
    count = 30_000

    @asynccontextmanager
    async def numbers() -> AsyncIterator[AsyncIterator[int]]:
        async def generate() -> AsyncIterator[int]:
            for n in range(count):
                yield n

        yield generate()

    async def consume(portal: TrioPortal) -> tuple[list[int], int, float]:
        start, received, batches = time.perf_counter(), [], 0
        async with portal.stream(numbers) as stream:
            async for batch in stream:
                received.extend(batch)
                batches += 1
                await asyncio.sleep(0.001)  # like grpc sending the batch: events pile up meanwhile
        return received, batches, time.perf_counter() - start

    async with TrioPortal.open() as portal, open_asyncio_thread() as thread:
        received, batches, seconds = await thread.run(consume(portal))
    assert received == list(range(count))
    print(f"\nportal: {count} events in {batches} batches, {count / seconds:,.0f} events/s")
    assert batches < count / 10  # one hop per event would make `count` batches


async def test_watch_of_unknown_execution_is_not_found() -> None:
    async with serving(FakePlane()) as (client, _):
        watch = listing(client.control.Watch)
        error = await client.fails(watch, pb.WatchRequest(execution_id=404))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "404" in error.details()


# Lifecycle, auth, health, reflection ------------------------------------------------------------


async def test_token_is_required_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(FakePlane(), token=SECRET) as (client, _):
        request = pb.ListRegistriesRequest()
        assert not (await client(client.registries.ListRegistries, request)).registries

        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", SECRET)]):
            client.metadata = metadata
            denied = await client.fails(client.registries.ListRegistries, request)
            assert denied.code() == grpc.StatusCode.UNAUTHENTICATED
            assert SECRET not in denied.details()
            stream = await client.fails(listing(client.control.Watch), pb.WatchRequest())
            assert stream.code() == grpc.StatusCode.UNAUTHENTICATED

        # health stays open: load balancers and systemd probes carry no token
        check = await client(client.health.Check, health_pb2.HealthCheckRequest())
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    assert SECRET not in caplog.text
    assert SECRET not in repr(ApiSettings(token=SECRET))


async def test_health_is_serving_and_reflection_lists_the_services() -> None:
    async with serving(FakePlane()) as (client, _):
        for service in ("", *SERVICES):
            request = health_pb2.HealthCheckRequest(service=service)
            check = await client(client.health.Check, request)
            assert check.status == health_pb2.HealthCheckResponse.SERVING

        def services() -> list[str]:
            return list(ProtoReflectionDescriptorDatabase(client.channel).get_services())

        listed = await trio.to_thread.run_sync(services)
    assert set(SERVICES) <= set(listed)
    assert "grpc.health.v1.Health" in listed


async def start_fails(**settings: Any) -> ConfigError:
    """The ConfigError `nursery.start(server.run)` raises: bare, not in an exception group."""
    async with trio.open_nursery() as nursery:
        with pytest.raises(ConfigError) as info:
            await nursery.start(ApiServer(FakePlane(), ApiSettings(**settings)).run)
    return info.value


async def test_port_in_use_fails_start_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = await start_fails(listen=f"127.0.0.1:{port}")
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in str(error)
    error = await start_fails(listen="localhost")
    assert "expected host:port or unix:/path" in str(error)


async def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "regsyncd.sock"
    async with serving(FakePlane(), listen=f"unix:{path}") as (client, _):
        assert path.exists()
        assert (await client(client.control.GetStats, pb.StatsRequest())).tasks_total == 0


async def test_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    async with serving(FakePlane(), tls_cert=str(cert), tls_key=str(key)) as (plain, _):
        trusted = grpc.ssl_channel_credentials(cert.read_bytes())
        tls = Client(plain.address, credentials=trusted)
        assert (await tls(tls.control.GetStats, pb.StatsRequest())).tasks_total == 0
        tls.channel.close()
        refused = await plain.fails(plain.control.GetStats, pb.StatsRequest())
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
    error = await start_fails(tls_cert=str(cert), tls_key=str(tmp_path / "none"))
    assert f"cannot read the TLS key file {tmp_path / 'none'}: No such file" in str(error)
    error = await start_fails(tls_cert=str(cert), tls_key=str(cert))
    assert "are not a valid pair" in str(error)
    assert "both a certificate file and a key file" in str(await start_fails(tls_cert=str(cert)))


async def test_shutdown_lets_requests_in_flight_finish() -> None:
    plane = FakePlane()
    plane.slow = True
    server_scope = trio.CancelScope()
    result: list[pb.Stats] = []

    async def serve(task_status: trio.TaskStatus[str]) -> None:
        with server_scope:
            await ApiServer(plane, ApiSettings(listen="127.0.0.1:0")).run(task_status=task_status)

    async with trio.open_nursery() as nursery:
        client = Client(await nursery.start(serve))

        async def slow_call() -> None:
            result.append(await client(client.control.GetStats, pb.StatsRequest()))

        nursery.start_soon(slow_call)
        await trio.sleep(SLOW_STATS / 3)  # the call is in flight in trio now
        stopping = trio.current_time()
        server_scope.cancel()  # the daemon stops; its grace (1 s) exceeds the call's 0.3 s
    client.channel.close()
    assert result and result[0].tasks_total == 0
    assert trio.current_time() - stopping < 2


async def test_shutdown_with_an_open_watch_ends_it_and_its_trio_side() -> None:
    plane = FakePlane()
    with trio.fail_after(5):
        async with serving(plane) as (client, nursery):
            stream = client.control.Watch(pb.WatchRequest(execution_id=FOREVER))
            await trio.to_thread.run_sync(next, stream)
            await plane.watching.wait()
            nursery.cancel_scope.cancel()
        await plane.watch_cancelled.wait()  # set before the server's nursery could exit
    with pytest.raises(grpc.RpcError) as info:
        await trio.to_thread.run_sync(next, stream)
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
