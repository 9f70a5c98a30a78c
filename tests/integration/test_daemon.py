"""regsyncd serve in-process: every RPC through real gRPC, syncs against real registries.

The tests marked `BOTH_ENGINES` run twice: on an SQLite file and on a PostgreSQL database."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.settings import GlobalSettings, RetrySettings
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.certs import self_signed
from support.images import manifest_digest, push_cosign, push_image, push_index, random_layer
from support.registry import RegistryServer

pytestmark = pytest.mark.integration

S = pb.ExecutionStatus
FAST = GlobalSettings(retry=RetrySettings(max_attempts=2, initial_interval=0.01,
                                          max_interval=0.05), timeout=20)


class Api:
    """Blocking gRPC stubs, called from worker threads so the daemon's trio loop keeps running."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.channel = grpc.insecure_channel(address)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.registries = rpc.RegistryServiceStub(self.channel)
        self.tasks = rpc.TaskServiceStub(self.channel)
        self.executions = rpc.ExecutionServiceStub(self.channel)
        self.control = rpc.ControlServiceStub(self.channel)

    async def __call__(self, method: Callable[..., Any], request: Any) -> Any:
        return await trio.to_thread.run_sync(
            lambda: method(request, metadata=self.metadata, timeout=20)
        )

    async def error(self, method: Callable[..., Any], request: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            await self(method, request)
        return caught.value

    async def wait_finished(self, execution_id: int, timeout: float = 30) -> pb.ExecutionDetail:
        with trio.fail_after(timeout):
            while True:
                detail: pb.ExecutionDetail = await self(self.executions.GetExecution,
                                                        pb.ExecutionRequest(id=execution_id))
                if detail.execution.status not in (S.EXECUTION_STATUS_QUEUED,
                                                   S.EXECUTION_STATUS_RUNNING):
                    return detail
                await trio.sleep(0.05)


BOTH_ENGINES = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The daemon's --db: an SQLite file unless a test asks for both engines."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return str(tmp_path / "regsync.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def daemon(db_url: str, nursery: trio.Nursery) -> AsyncIterator[Daemon]:
    options = ServeOptions(db_path=db_url, listen="127.0.0.1:0",
                           ui_port=None, shutdown_grace=1.0, global_settings=FAST)
    started: Daemon = await nursery.start(Daemon(options).run)
    yield started
    await started.shutdown()


@pytest.fixture
def api(daemon: Daemon) -> Api:
    return Api(daemon.address)


async def add_pair(api: Api, src: RegistryServer, dst: RegistryServer) -> None:
    for name, server in (("src", src), ("dst", dst)):
        await api(api.registries.CreateRegistry, pb.RegistrySpec(
            name=name, url=server.url, username=server.username or "",
            password=server.password or None,
        ))


def task_spec(name: str, source: str, target: str, **extra: Any) -> pb.TaskSpec:
    extra.setdefault("referrers", True)  # replies state it; unset in a request means the same
    return pb.TaskSpec(
        name=name, enabled=True,
        source=pb.Endpoint(registry="src", repository=source),
        target=pb.Endpoint(registry="dst", repository=target), **extra,
    )


async def test_schedule_preview_is_what_the_scheduler_does(api: Api) -> None:
    """PreviewSchedule: the wizard computed its preview in the browser's local time and refused
    `@daily`; now the daemon answers, in UTC, reading the expression as a task reads it."""
    for name in ("src", "dst"):
        await api(api.registries.CreateRegistry,
                  pb.RegistrySpec(name=name, url=f"https://{name}.example"))
    await api(api.tasks.CreateTask, task_spec("nightly", "app", "mirror/app",
                                              cron_expression=" @DAILY "))
    task = await api(api.tasks.GetTask, pb.NameRequest(name="nightly"))
    preview = await api(api.tasks.PreviewSchedule,
                        pb.PreviewScheduleRequest(cron_expression=" @DAILY ", count=3))
    assert preview.cron_expression == task.spec.cron_expression == "@daily"
    times = [t.ToDatetime(tzinfo=UTC) for t in preview.next_runs]
    assert times[0] == task.next_run.ToDatetime(tzinfo=UTC)  # the scheduler's own next run
    assert len(times) == 3 and times == sorted(set(times))
    assert all((t.hour, t.minute, t.second) == (0, 0, 0) for t in times)  # midnight UTC
    assert len((await api(api.tasks.PreviewSchedule, pb.PreviewScheduleRequest(
        cron_expression="30 4 * * 1"))).next_runs) == 5  # count 0: five

    bad = pb.PreviewScheduleRequest(cron_expression="61 2 * * *")
    refused = await api.error(api.tasks.PreviewSchedule, bad)
    created = await api.error(api.tasks.CreateTask, task_spec(
        "bad", "app", "mirror/bad", cron_expression="61 2 * * *"))
    assert refused.code() == created.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.details() == "cron_expression: invalid cron expression '61 2 * * *'"
    assert refused.details() in created.details()  # CreateTask's words for the same mistake
    too_many = await api.error(api.tasks.PreviewSchedule,
                               pb.PreviewScheduleRequest(cron_expression="@hourly", count=51))
    assert too_many.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_registry_crud_round_trip_never_returns_the_password(
    api: Api, basic_registry: RegistryServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = basic_registry.password or ""
    created = await api(api.registries.CreateRegistry, pb.RegistrySpec(
        name="harbor", url=basic_registry.url, username="alice", password=secret, qps=5))
    assert created.password_set and created.qps == 5
    assert secret not in str(created)

    listed = await api(api.registries.ListRegistries, pb.ListRegistriesRequest())
    assert [r.name for r in listed.registries] == ["harbor"]
    verdict = await api(api.registries.TestRegistry, pb.NameRequest(name="harbor"))
    assert verdict.ok and verdict.auth_ok and verdict.api_version == "registry/2.0"

    # update without a password keeps it; the test still passes
    updated = await api(api.registries.UpdateRegistry, pb.RegistrySpec(
        name="harbor", url=basic_registry.url, username="alice", qps=0))
    assert updated.password_set and updated.qps == 0
    assert (await api(api.registries.TestRegistry, pb.NameRequest(name="harbor"))).ok

    wrong = await api(api.registries.UpdateRegistry, pb.RegistrySpec(
        name="harbor", url=basic_registry.url, username="alice", password="nope"))
    assert wrong.password_set
    verdict = await api(api.registries.TestRegistry, pb.NameRequest(name="harbor"))
    assert not verdict.ok and verdict.reachable and verdict.error_kind == "auth"
    assert "harbor" in verdict.message and "nope" not in verdict.message

    dup = await api.error(api.registries.CreateRegistry,
                          pb.RegistrySpec(name="harbor", url=basic_registry.url))
    assert dup.code() == grpc.StatusCode.ALREADY_EXISTS
    bad = await api.error(api.registries.CreateRegistry,
                          pb.RegistrySpec(name="x", url="ftp://example.com"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "registry.url" in bad.details()
    await api(api.registries.DeleteRegistry, pb.NameRequest(name="harbor"))
    gone = await api.error(api.registries.GetRegistry, pb.NameRequest(name="harbor"))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    assert secret not in caplog.text


async def test_task_crud_and_validation(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    await add_pair(api, registry, registry2)
    spec = task_spec("nginx", "library/nginx", "mirror/nginx", cron_expression="0 2 * * *",
                     tags=pb.TagFilter(include=[r"^1\."], latest=3), architectures=["amd64"])
    created = await api(api.tasks.CreateTask, spec)
    assert created.spec == spec
    assert created.next_run.seconds > 0  # enabled with a schedule: the next run is known

    disabled = await api(api.tasks.DisableTask, pb.NameRequest(name="nginx"))
    assert not disabled.spec.enabled and not disabled.HasField("next_run")
    enabled = await api(api.tasks.EnableTask, pb.NameRequest(name="nginx"))
    assert enabled.spec.enabled

    spec.tags.exclude.append("-rc")
    assert (await api(api.tasks.UpdateTask, spec)).spec.tags.exclude == ["-rc"]
    listed = await api(api.tasks.ListTasks, pb.ListTasksRequest())
    assert [t.spec.name for t in listed.tasks] == ["nginx"]

    for broken, field in [
        (task_spec("b1", "a", "b", tags=pb.TagFilter(include=["("])), "task.tags.include[0]"),
        (task_spec("b2", "a", "b", cron_expression="61 * * * *"), "task.cron_expression"),
        (pb.TaskSpec(name="b3", source=pb.Endpoint(registry="nope", repository="a"),
                     target=pb.Endpoint(registry="dst", repository="b")), "task.source.registry"),
        (task_spec("b4", "UPPER", "b"), "task.source.repository"),
    ]:
        error = await api.error(api.tasks.CreateTask, broken)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, broken
        assert field in error.details(), error.details()

    in_use = await api.error(api.registries.DeleteRegistry, pb.NameRequest(name="src"))
    assert in_use.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "nginx" in in_use.details()
    await api(api.tasks.DeleteTask, pb.NameRequest(name="nginx"))
    missing = await api.error(api.tasks.GetTask, pb.NameRequest(name="nginx"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


@BOTH_ENGINES
async def test_run_watch_results_logs_and_stats(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    for tag in ("1.0", "1.1", "2.0"):
        push_image(registry, "app", tag, layers=[random_layer(200_000, seed=tag)])
    push_index(registry, "app", "3.0")
    signature = push_cosign(registry, "app", str(manifest_digest(registry, "app", "1.0")))
    await add_pair(api, registry, registry2)
    await api(api.tasks.CreateTask, task_spec("app", "app", "mirror/app"))

    plan = await api(api.tasks.PlanTask, pb.NameRequest(name="app"))
    assert sorted((t.tag, t.action, t.referrers) for t in plan.tags) == [
        ("1.0", "copy", 1), ("1.1", "copy", 0), ("2.0", "copy", 0), ("3.0", "copy", 0)]

    events: list[pb.WatchEvent] = []

    def watch() -> None:
        stream = api.control.Watch(pb.WatchRequest(logs=True), timeout=30)
        for event in stream:
            events.append(event)
            if event.HasField("execution") and event.execution.status == S.EXECUTION_STATUS_SUCCEEDED:
                stream.cancel()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, watch)
        await trio.sleep(0.3)  # the watcher is attached before the run starts
        execution = await api(api.tasks.RunTask, pb.NameRequest(name="app"))
        again = await api.error(api.tasks.RunTask, pb.NameRequest(name="app"))
        assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    detail = await api.wait_finished(execution.id)

    assert detail.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert detail.execution.trigger == pb.TRIGGER_MANUAL
    assert detail.execution.counters.tags_copied == 4
    assert detail.execution.counters.referrers_copied == 1  # the .sig of 1.0, on its own
    assert manifest_digest(registry2, "mirror/app", signature) == signature
    assert sorted(t.tag for t in detail.tags if t.outcome == ev.TAG_OUTCOME_COPIED) == [
        "1.0", "1.1", "2.0", "3.0"]
    for tag in ("1.0", "3.0"):
        assert manifest_digest(registry2, "mirror/app", tag) == manifest_digest(registry, "app", tag)

    tag_events = [e.tag.tag for e in events if e.HasField("tag")]
    assert sorted(tag_events) == ["1.0", "1.1", "2.0", "3.0"]
    assert any(e.HasField("log") for e in events)
    assert events[-1].execution.status == S.EXECUTION_STATUS_SUCCEEDED

    logs = await api(api.executions.GetLogs, pb.LogsRequest(execution_id=execution.id))
    assert any("4 tags to sync" in line.message for line in logs.lines)
    stats = await api(api.control.GetStats, pb.StatsRequest())
    assert stats.succeeded_total == 1 and stats.tasks_total == 1 and stats.running == 0
    listed = await api(api.executions.ListExecutions, pb.ListExecutionsRequest(task="app"))
    assert [e.id for e in listed.executions] == [execution.id]

    second = await api(api.tasks.RunTask, pb.NameRequest(name="app"))
    done = await api.wait_finished(second.id)
    assert done.execution.counters.tags_skipped == 4
    nothing = await api.error(api.executions.RetryFailed, pb.ExecutionRequest(id=second.id))
    assert nothing.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_the_daemon_remembers_excluded_platforms_across_executions(
    api: Api, daemon: Daemon, registry: RegistryServer, registry2: RegistryServer,
    nursery: trio.Nursery,
) -> None:
    push_image(registry, "one", "arm", layers=[random_layer(1000, seed=1)], arch="arm64")
    await add_pair(api, registry, registry2)
    await api(api.tasks.CreateTask, task_spec("one", "one", "one", platforms=["linux/amd64"]))
    first = await api(api.tasks.RunTask, pb.NameRequest(name="one"))
    assert (await api.wait_finished(first.id)).execution.counters.tags_skipped == 1
    gets = registry.count("GET", r"/manifests/")

    second = await api(api.tasks.RunTask, pb.NameRequest(name="one"))
    detail = await api.wait_finished(second.id)
    plan = await api(api.tasks.PlanTask, pb.NameRequest(name="one"))

    assert [(t.tag, t.reason) for t in detail.tags] == [
        ("arm", "platform not selected by the rule")]
    assert registry.count("GET", r"/manifests/") == gets == 1
    assert [(t.tag, t.action) for t in plan.tags] == [("arm", "skip")]

    await daemon.shutdown()  # kept beside the store: a restarted daemon knows it too
    restarted: Daemon = await nursery.start(Daemon(daemon.options).run)
    try:
        api = Api(restarted.address)
        third = await api(api.tasks.RunTask, pb.NameRequest(name="one"))
        assert (await api.wait_finished(third.id)).execution.counters.tags_skipped == 1
        assert registry.count("GET", r"/manifests/") == gets
    finally:
        await restarted.shutdown()


@BOTH_ENGINES
async def test_retry_failed_reruns_only_failed_tags(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_image(registry, "r", "ok", layers=[random_layer(1000, seed=1)])
    push_image(registry, "r", "gone", layers=[random_layer(1000, seed=2)])
    await add_pair(api, registry, registry2)
    await api(api.tasks.CreateTask, task_spec("r", "r", "copy/r"))
    first = await api(api.tasks.RunTask, pb.NameRequest(name="r"))
    assert (await api.wait_finished(first.id)).execution.status == S.EXECUTION_STATUS_SUCCEEDED
    # the target becomes unreachable and a new tag appears: every tag of this run fails
    await api(api.registries.UpdateRegistry, pb.RegistrySpec(name="dst", url="http://127.0.0.1:9"))
    push_image(registry, "r", "new", layers=[random_layer(1000, seed=3)])
    failed = await api(api.tasks.RunTask, pb.NameRequest(name="r"))
    detail = await api.wait_finished(failed.id)
    assert detail.execution.status == S.EXECUTION_STATUS_FAILED
    assert {t.tag for t in detail.tags if t.outcome == ev.TAG_OUTCOME_FAILED} == {"ok", "gone", "new"}
    assert all(t.error_kind == "network" for t in detail.tags)

    await api(api.registries.UpdateRegistry, pb.RegistrySpec(name="dst", url=registry2.url))
    retry = await api(api.executions.RetryFailed, pb.ExecutionRequest(id=failed.id))
    assert retry.trigger == pb.TRIGGER_RETRY and retry.parent_id == failed.id
    result = await api.wait_finished(retry.id)
    assert result.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert {t.tag: t.outcome for t in result.tags} == {
        "ok": ev.TAG_OUTCOME_SKIPPED, "gone": ev.TAG_OUTCOME_SKIPPED, "new": ev.TAG_OUTCOME_COPIED}


async def test_retry_after_the_source_could_not_be_listed_runs_the_whole_rule(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_image(registry, "r", "a", layers=[random_layer(1000, seed=1)])
    push_image(registry, "r", "b", layers=[random_layer(1000, seed=2)])
    await add_pair(api, registry, registry2)
    await api(api.registries.UpdateRegistry, pb.RegistrySpec(name="src", url="http://127.0.0.1:9"))
    await api(api.tasks.CreateTask, task_spec("r", "r", "copy/r"))
    failed = await api(api.tasks.RunTask, pb.NameRequest(name="r"))
    detail = await api.wait_finished(failed.id)
    assert detail.execution.status == S.EXECUTION_STATUS_FAILED
    assert [(t.tag, t.error_kind) for t in detail.tags] == [("", "network")]

    await api(api.registries.UpdateRegistry, pb.RegistrySpec(name="src", url=registry.url))
    retry = await api(api.executions.RetryFailed, pb.ExecutionRequest(id=failed.id))
    result = await api.wait_finished(retry.id)
    assert result.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert {t.tag: t.outcome for t in result.tags} == {
        "a": ev.TAG_OUTCOME_COPIED, "b": ev.TAG_OUTCOME_COPIED}


@BOTH_ENGINES
async def test_stop_cancels_within_two_seconds(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    import threading

    from support.proxy import CountingProxy, Fault

    push_image(registry, "slow", "1", layers=[random_layer(100_000, seed=1)])
    release = threading.Event()

    def stall(request: Any) -> Fault | None:
        # blob downloads hang (in the proxy's thread) until the test ends: the run stays busy
        if "/blobs/" in request.path:
            release.wait(30)
        return None

    with CountingProxy(registry, fault=stall) as proxy:
        await api(api.registries.CreateRegistry, pb.RegistrySpec(name="src", url=proxy.url))
        await api(api.registries.CreateRegistry, pb.RegistrySpec(name="dst", url=registry2.url))
        await api(api.tasks.CreateTask, task_spec("slow", "slow", "slow"))
        execution = await api(api.tasks.RunTask, pb.NameRequest(name="slow"))
        await trio.sleep(0.5)
        start = trio.current_time()
        stopped = await api(api.tasks.StopTask, pb.NameRequest(name="slow"))
        assert trio.current_time() - start < 2.5
        release.set()
    assert stopped.id == execution.id
    assert stopped.status == S.EXECUTION_STATUS_STOPPED
    assert stopped.counters.tags_total == 1  # what the run got to is kept, not zeroed
    not_running = await api.error(api.tasks.StopTask, pb.NameRequest(name="slow"))
    assert not_running.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert manifest_digest(registry2, "slow", "1") is None


async def test_apply_yaml_upserts(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    text = f"""
version: "1.0"
registries:
  src: {{url: "{registry.url}"}}
  dst: {{url: "{registry2.url}", username: bob, password: "pa$$word"}}
sync_rules:
  - name: one
    source: {{registry: src, repository: a}}
    target: {{registry: dst, repository: b}}
"""
    applied = await api(api.control.Apply, pb.ApplyRequest(yaml=text, source="sync.yaml"))
    assert sorted(applied.registries_created) == ["dst", "src"]
    assert list(applied.tasks_created) == ["one"]
    again = await api(api.control.Apply, pb.ApplyRequest(yaml=text, source="sync.yaml"))
    assert list(again.tasks_updated) == ["one"] and not again.tasks_created
    dst = await api(api.registries.GetRegistry, pb.NameRequest(name="dst"))
    assert dst.password_set and dst.username == "bob"

    bad = await api.error(api.control.Apply, pb.ApplyRequest(
        yaml=text.replace("repository: a", "repository: A"), source="sync.yaml"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sync.yaml" in bad.details() and "repository" in bad.details()


@BOTH_ENGINES
async def test_status_and_health(api: Api, daemon: Daemon, db_url: str) -> None:
    status = await api(api.control.GetStatus, pb.StatusRequest())
    assert status.version
    if db_url.startswith("postgresql://"):  # the URL, its password masked
        secret = db_url.split(":")[2].split("@")[0]
        assert status.store == db_url.replace(secret, "***") and secret not in str(status)
    else:
        assert status.store == db_url
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(api.channel)
    reply = await trio.to_thread.run_sync(lambda: health.Check(health_pb2.HealthCheckRequest()))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    if not db_url.startswith("postgresql://"):
        mode = stat.S_IMODE(os.stat(daemon.options.db_path).st_mode)
        assert mode == 0o600


async def test_api_token_is_enforced(tmp_path: Path, nursery: trio.Nursery) -> None:
    token = "s3cret-token-" + os.urandom(4).hex()
    options = ServeOptions(db_path=str(tmp_path / "t.db"), listen="127.0.0.1:0", ui_port=None,
                           token=token)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    try:
        anonymous = Api(daemon.address)
        denied = await anonymous.error(anonymous.control.GetStats, pb.StatsRequest())
        assert denied.code() == grpc.StatusCode.UNAUTHENTICATED
        assert token not in denied.details()
        wrong = Api(daemon.address, token="wrong")
        assert (await wrong.error(wrong.control.GetStats, pb.StatsRequest())).code() == \
            grpc.StatusCode.UNAUTHENTICATED
        good = Api(daemon.address, token=token)
        assert (await good(good.control.GetStats, pb.StatsRequest())).tasks_total == 0
    finally:
        await daemon.shutdown()


async def test_preview_tags_lists_and_filters(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    for tag in ("1.19", "1.20", "1.21-alpine", "1.22", "latest"):
        push_image(registry, "nginx", tag, layers=[random_layer(100, seed=tag)])
    await add_pair(api, registry, registry2)
    spec = task_spec("p", "nginx", "nginx",
                     tags=pb.TagFilter(include=[r"^1\.2"], exclude=["alpine"], latest=1))
    listed = await api(api.tasks.PreviewTags, pb.PreviewTagsRequest(spec=spec))
    assert list(listed.kept) == ["1.22"]
    reasons = {d.tag: d.reason for d in listed.dropped}
    assert set(reasons) == {"1.19", "1.20", "1.21-alpine", "latest"}
    assert "excluded" in reasons["1.21-alpine"] and "newest" in reasons["1.20"]
    given = await api(api.tasks.PreviewTags, pb.PreviewTagsRequest(spec=spec, tags=["1.29", "1.3"]))
    assert list(given.kept) == ["1.29"]


async def test_a_late_watcher_first_gets_the_current_state(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    import threading

    from support.proxy import CountingProxy

    push_image(registry, "w", "1", layers=[random_layer(1000, seed=1)])
    release = threading.Event()

    def hold(request: Any) -> None:
        if "/blobs/" in request.path:
            release.wait(30)

    with CountingProxy(registry, fault=hold) as proxy:
        await api(api.registries.CreateRegistry, pb.RegistrySpec(name="src", url=proxy.url))
        await api(api.registries.CreateRegistry, pb.RegistrySpec(name="dst", url=registry2.url))
        await api(api.tasks.CreateTask, task_spec("w", "w", "w"))
        execution = await api(api.tasks.RunTask, pb.NameRequest(name="w"))
        await trio.sleep(0.5)

        def first_event() -> pb.WatchEvent:
            stream = api.control.Watch(pb.WatchRequest(execution_id=execution.id), timeout=10)
            event: pb.WatchEvent = next(iter(stream))
            stream.cancel()
            return event

        first = await trio.to_thread.run_sync(first_event)
        release.set()
    assert first.execution_id == execution.id
    assert first.execution.status == S.EXECUTION_STATUS_RUNNING
    assert first.execution.counters.tags_total == 1
    assert (await api.wait_finished(execution.id)).execution.status == S.EXECUTION_STATUS_SUCCEEDED


async def test_watching_one_execution_ends_with_it(
    api: Api, registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_image(registry, "e", "1", layers=[random_layer(1000, seed=1)])
    await add_pair(api, registry, registry2)
    await api(api.tasks.CreateTask, task_spec("e", "e", "e"))
    execution = await api(api.tasks.RunTask, pb.NameRequest(name="e"))

    def all_events() -> list[pb.WatchEvent]:  # returns only if the stream ends by itself
        return list(api.control.Watch(pb.WatchRequest(execution_id=execution.id), timeout=20))

    live = await trio.to_thread.run_sync(all_events)
    assert live[-1].execution.status == S.EXECUTION_STATUS_SUCCEEDED
    after = await trio.to_thread.run_sync(all_events)  # joined after the end: the final state
    assert [e.execution.status for e in after] == [S.EXECUTION_STATUS_SUCCEEDED]
    with pytest.raises(grpc.RpcError) as unknown:
        await trio.to_thread.run_sync(
            lambda: list(api.control.Watch(pb.WatchRequest(execution_id=999), timeout=10)))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_config_file_is_applied_at_start(
    tmp_path: Path, nursery: trio.Nursery, registry: RegistryServer
) -> None:
    config = tmp_path / "sync.yaml"
    config.write_text(
        f'version: "1.0"\nregistries:\n  a: {{url: "{registry.url}"}}\n'
        "sync_rules:\n  - name: nightly\n    source: {registry: a, repository: x}\n"
        '    target: {registry: a, repository: y}\n    cron_expression: "0 2 * * *"\n'
    )
    options = ServeOptions(db_path=str(tmp_path / "c.db"), listen="127.0.0.1:0", ui_port=None,
                           config_path=str(config))
    daemon: Daemon = await nursery.start(Daemon(options).run)
    try:
        api = Api(daemon.address)
        task = await api(api.tasks.GetTask, pb.NameRequest(name="nightly"))
        assert task.spec.cron_expression == "0 2 * * *" and task.HasField("next_run")
        status = await api(api.control.GetStatus, pb.StatusRequest())
        assert [r.task for r in status.next_runs] == ["nightly"]
    finally:
        await daemon.shutdown()


async def test_an_error_inside_a_run_is_recorded_with_its_reason(
    api: Api, registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    ca, _ = self_signed(tmp_path)
    await api(api.registries.CreateRegistry, pb.RegistrySpec(
        name="src", url=registry.url.replace("http://", "https://"), ca_file=str(ca)))
    ca.write_text("not a certificate\n")  # spoilt after it was accepted: the run finds out
    await api(api.registries.CreateRegistry, pb.RegistrySpec(name="dst", url=registry2.url))
    await api(api.tasks.CreateTask, task_spec("tls", "a", "b"))
    execution = await api(api.tasks.RunTask, pb.NameRequest(name="tls"))
    detail = await api.wait_finished(execution.id)
    assert detail.execution.status == S.EXECUTION_STATUS_FAILED
    assert "ca_file" in detail.execution.error and "internal error" not in detail.execution.error


@BOTH_ENGINES
async def test_a_crash_left_run_and_a_missed_schedule_start_cleanly(
    db_url: str, nursery: trio.Nursery, registry: RegistryServer, registry2: RegistryServer
) -> None:
    from datetime import UTC, datetime, timedelta

    from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule
    from regsync.daemon.store import Database
    from regsync.daemon.store.models import Task
    from regsync.daemon.store.records import Trigger

    push_image(registry, "c", "1", layers=[random_layer(1000, seed=1)])
    path = db_url
    with Database.open(path) as db:
        def prepare(repo: Any) -> None:
            repo.create_registry(RegistrySettings(name="src", url=registry.url))
            repo.create_registry(RegistrySettings(name="dst", url=registry2.url))
            repo.create_task(SyncRule(name="c", source=Endpoint("src", "c"),
                                      target=Endpoint("dst", "c"), cron_expression="0 * * * *"))
            yesterday = (datetime.now(UTC) - timedelta(days=1)).timestamp()
            Task.update(created=yesterday).where(Task.name == "c").execute()
            repo.mark_running(repo.create_execution("c", Trigger.CRON).id)  # then: kill -9

        db.run_sync(prepare)
    options = ServeOptions(db_path=path, listen="127.0.0.1:0", ui_port=None, global_settings=FAST)
    daemon: Daemon = await nursery.start(Daemon(options).run)  # starts despite both
    try:
        api = Api(daemon.address)
        listed = await api(api.executions.ListExecutions, pb.ListExecutionsRequest(task="c"))
        # the crash-left run is resumed; the missed 02:00-style tick finds the task busy
        assert [e.trigger for e in listed.executions][-2:] == [pb.TRIGGER_RESUME,
                                                              pb.TRIGGER_CRON]
        resumed = next(e for e in listed.executions if e.trigger == pb.TRIGGER_RESUME)
        assert (await api.wait_finished(resumed.id)).execution.status == \
            S.EXECUTION_STATUS_SUCCEEDED
        assert manifest_digest(registry2, "c", "1") == manifest_digest(registry, "c", "1")
    finally:
        await daemon.shutdown()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_lost_postgresql_connection_fails_one_call_and_the_daemon_serves_on(
    api: Api, db_url: str, postgres: Any
) -> None:
    await api(api.registries.CreateRegistry, pb.RegistrySpec(name="r", url="https://r.example"))
    # the first store operation after the cut fails: the daemon's own rounds on a shared store
    # (leases, the scheduler's lead, once a second) may be first; then cut again
    lost: grpc.RpcError | None = None
    for _ in range(20):
        assert postgres.terminate(db_url.rsplit("/", 1)[1]) >= 1  # the server restarted
        try:
            await api(api.registries.ListRegistries, pb.ListRegistriesRequest())
        except grpc.RpcError as exc:
            lost = exc
            break
    assert lost is not None and lost.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert lost.details().startswith("the daemon's store failed: ")  # the server's words
    assert postgres.password not in lost.details()
    listed = await api(api.registries.ListRegistries, pb.ListRegistriesRequest())
    assert [r.name for r in listed.registries] == ["r"]  # reconnected


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_connection_lost_mid_run_ends_that_run_on_record_and_the_daemon_goes_on(
    api: Api, db_url: str, postgres: Any, registry: RegistryServer, registry2: RegistryServer
) -> None:
    import threading

    from support.proxy import CountingProxy, Fault

    push_image(registry, "p", "1", layers=[random_layer(10_000, seed=1)])
    release = threading.Event()

    def stall(request: Any) -> Fault | None:
        if "/blobs/" in request.path:
            release.wait(30)  # the run is mid-copy while the server goes away
        return None

    with CountingProxy(registry, fault=stall) as proxy:
        await api(api.registries.CreateRegistry, pb.RegistrySpec(name="src", url=proxy.url))
        await api(api.registries.CreateRegistry, pb.RegistrySpec(name="dst", url=registry2.url))
        await api(api.tasks.CreateTask, task_spec("p", "p", "p"))
        execution = await api(api.tasks.RunTask, pb.NameRequest(name="p"))
        await trio.sleep(1.0)  # listed, planned, flushed: now waiting on the blob
        assert postgres.terminate(db_url.rsplit("/", 1)[1]) >= 1
        release.set()
        await trio.sleep(1.5)  # no call of ours meanwhile: the run's own write meets the loss
        detail = await api.wait_finished(execution.id)  # its end is recorded, not left running
        # the run's first write after the loss failed: either its end (then retried until the
        # store took it: succeeded) or a progress write (then the run failed with that reason)
        if detail.execution.status != S.EXECUTION_STATUS_SUCCEEDED:
            assert detail.execution.status == S.EXECUTION_STATUS_FAILED
            assert "the daemon's store failed" in detail.execution.error
        again = await api(api.tasks.RunTask, pb.NameRequest(name="p"))  # the daemon carried on
        final = await api.wait_finished(again.id)
        assert final.execution.status == S.EXECUTION_STATUS_SUCCEEDED, final
    assert manifest_digest(registry2, "p", "1") == manifest_digest(registry, "p", "1")


async def test_preview_of_a_glob_lists_the_matched_repositories_and_their_tags(
    api: Api, registry: RegistryServer
) -> None:
    for repo, tags in (("team-a/web", ("1.0", "1.1-rc")), ("team-a/api/v2", ("2.0",)),
                       ("team-a/old", ("1.0",)), ("team-b/x", ("1.0",))):
        for tag in tags:
            push_image(registry, repo, tag, layers=[random_layer(500, seed=repo + tag)])
    await api(api.registries.CreateRegistry, pb.RegistrySpec(name="src", url=registry.url))
    spec = pb.TaskSpec(source=pb.Endpoint(registry="src", repository="team-a/**",
                                          exclude=["team-a/old"]),
                       target=pb.Endpoint(registry="src", repository="dr/**"),
                       tags=pb.TagFilter(exclude=["-rc"]))
    reply = await api(api.tasks.PreviewTags, pb.PreviewTagsRequest(spec=spec))
    assert list(reply.kept) == ["team-a/api/v2:2.0", "team-a/web:1.0"]
    assert [(d.tag, d.reason) for d in reply.dropped] == [("team-a/web:1.1-rc",
                                                            "excluded by '-rc'")]
    spec.target.repository = "dr/*"
    bad = await api.error(api.tasks.PreviewTags, pb.PreviewTagsRequest(spec=spec))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.target.repository: 'dr/*' must have the same wildcards" in (bad.details() or "")
