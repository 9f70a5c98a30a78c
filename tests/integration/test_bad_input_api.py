"""Bad input through the real daemon's API: every refusal has the precise status code, a message
naming the field or the item, stays short whatever it was sent, and changes nothing.

Each case runs against a seeded daemon (two registries, one task, one finished execution); the
whole visible state (registries, tasks, executions, their logs, stats) is read before and after
and must be identical: a refused request never half-applies. No registry is contacted: the
registries point at a closed port, which is all the seeded (failed) execution needs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from google.protobuf.message import Message
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.config import CA_FILE_UNREADABLE
from regsync.daemon.settings import GlobalSettings, RetrySettings
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.certs import self_signed
from support.probe import Probe

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
S = pb.ExecutionStatus
FAST = GlobalSettings(retry=RetrySettings(max_attempts=1, initial_interval=0.01,
                                          max_interval=0.05), timeout=5)
CLOSED = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused at once
MEGA = 1024 * 1024
BIG = "a" * MEGA
MESSAGE_MAX = 1000  # no refusal message is longer than this, whatever the request held


class Api:
    """Blocking gRPC stubs, called from worker threads so the daemon's trio loop keeps running."""

    def __init__(self, address: str) -> None:
        # big enough for the megabyte requests these tests send
        options = [("grpc.max_send_message_length", 8 * MEGA)]
        self.address = address
        self.channel = grpc.insecure_channel(address, options=options)
        self.registries = rpc.RegistryServiceStub(self.channel)
        self.tasks = rpc.TaskServiceStub(self.channel)
        self.executions = rpc.ExecutionServiceStub(self.channel)
        self.control = rpc.ControlServiceStub(self.channel)

    async def __call__(self, method: Callable[..., Any], request: Any) -> Any:
        return await trio.to_thread.run_sync(lambda: method(request, timeout=20))

    async def error(self, method: Callable[..., Any], request: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            await self(method, request)
        return caught.value

    async def stream_error(self, request: pb.WatchRequest) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            await trio.to_thread.run_sync(lambda: list(self.control.Watch(request, timeout=10)))
        return caught.value

    async def snapshot(self) -> list[bytes]:
        """Everything a client can see, serialized deterministically."""
        replies: list[Message] = [
            await self(self.registries.ListRegistries, pb.ListRegistriesRequest()),
            await self(self.tasks.ListTasks, pb.ListTasksRequest()),
            await self(self.control.GetStats, pb.StatsRequest()),
        ]
        executions = await self(self.executions.ListExecutions, pb.ListExecutionsRequest())
        replies.append(executions)
        for execution in executions.executions:
            replies.append(await self(self.executions.GetExecution,
                                      pb.ExecutionRequest(id=execution.id)))
            replies.append(await self(self.executions.GetLogs,
                                      pb.LogsRequest(execution_id=execution.id)))
        return [reply.SerializeToString(deterministic=True) for reply in replies]


@pytest.fixture
async def api(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Api]:
    """A daemon seeded with registries src and dst, task t (src/a -> dst/b), one failed run."""
    options = ServeOptions(db_path=str(tmp_path / "regsync.db"), listen="127.0.0.1:0",
                           ui_port=None, shutdown_grace=1.0, global_settings=FAST)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    client = Api(daemon.address)
    for name in ("src", "dst"):
        await client(client.registries.CreateRegistry, pb.RegistrySpec(name=name, url=CLOSED))
    await client(client.tasks.CreateTask, task("t"))
    execution = await client(client.tasks.RunTask, pb.NameRequest(name="t"))
    with trio.fail_after(20):
        while True:
            detail = await client(client.executions.GetExecution,
                                  pb.ExecutionRequest(id=execution.id))
            if detail.execution.status == S.EXECUTION_STATUS_FAILED:
                break
            await trio.sleep(0.02)
    yield client
    client.channel.close()
    await daemon.shutdown()


def task(name: str, source: str = "a", target: str = "b", **extra: Any) -> pb.TaskSpec:
    return pb.TaskSpec(name=name, enabled=True,
                       source=pb.Endpoint(registry="src", repository=source),
                       target=pb.Endpoint(registry="dst", repository=target), **extra)


def registry(name: str = "new", url: str = "https://r.example", **extra: Any) -> pb.RegistrySpec:
    return pb.RegistrySpec(name=name, url=url, **extra)


@dataclass(frozen=True)
class Case:
    service: str  # attribute of Api holding the stub
    method: str
    request: Message
    code: grpc.StatusCode
    needles: tuple[str, ...]  # each must appear in the message


def case(call: str, request: Message, code: grpc.StatusCode, *needles: str) -> Case:
    service, method = call.split(".")
    return Case(service, method, request, code, needles)


INVALID, MISSING, TAKEN, CONFLICT = (Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.ALREADY_EXISTS,
                                     Code.FAILED_PRECONDITION)
UNKNOWN_TASK = pb.NameRequest(name="no-such-task")
UNKNOWN_REGISTRY = pb.NameRequest(name="no-such-registry")

CASES: dict[str, Case] = {
    # registry specs
    "registry-empty-name": case("registries.CreateRegistry", registry(""), INVALID,
                                "registry.name", "required"),
    "registry-bad-name": case("registries.CreateRegistry", registry("team/hub"), INVALID,
                              "registry.name", "1-63 characters"),
    "registry-no-url": case("registries.CreateRegistry", registry(url=""), INVALID,
                            "registry.url", "required"),
    "registry-ftp-url": case("registries.CreateRegistry", registry(url="ftp://r.example"),
                             INVALID, "registry.url", "https://"),
    "registry-url-with-path": case("registries.CreateRegistry",
                                   registry(url="https://r.example/v2/"), INVALID,
                                   "registry.url", "path"),
    "registry-url-credentials": case("registries.CreateRegistry",
                                     registry(url="https://u:pw@r.example"), INVALID,
                                     "registry.url", "credentials"),
    "registry-negative-qps": case("registries.CreateRegistry", registry(qps=-1), INVALID,
                                  "registry.qps", "greater than 0"),
    "registry-nan-qps": case("registries.CreateRegistry", registry(qps=float("nan")), INVALID,
                             "registry.qps", "nan"),
    "registry-infinite-qps": case("registries.CreateRegistry", registry(qps=float("inf")),
                                  INVALID, "registry.qps"),
    "registry-user-without-password": case("registries.CreateRegistry",
                                           registry(username="alice"), INVALID,
                                           "registry.password", "required"),
    "registry-missing-ca-file": case("registries.CreateRegistry",
                                     registry(ca_file="/nonexistent/ca.pem"), INVALID,
                                     "registry.ca_file", "cannot be read"),
    "registry-mega-name": case("registries.CreateRegistry", registry(BIG), INVALID,
                               "registry name", f"{MEGA} characters", "limit is 63"),
    "registry-mega-url": case("registries.CreateRegistry", registry(url="https://" + BIG),
                              INVALID, "registry.url", "limit is 2048"),
    "registry-duplicate": case("registries.CreateRegistry", registry("src", url=CLOSED), TAKEN,
                               "'src'"),
    "registry-update-unknown": case("registries.UpdateRegistry", registry("no-such-registry"),
                                    MISSING, "no-such-registry"),
    "registry-update-invalid": case("registries.UpdateRegistry", registry("src", url="nope"),
                                    INVALID, "registry.url"),
    "registry-get-unknown": case("registries.GetRegistry", UNKNOWN_REGISTRY, MISSING,
                                 "no-such-registry"),
    "registry-delete-unknown": case("registries.DeleteRegistry", UNKNOWN_REGISTRY, MISSING,
                                    "no-such-registry"),
    "registry-test-unknown": case("registries.TestRegistry", UNKNOWN_REGISTRY, MISSING,
                                  "no-such-registry"),
    "registry-delete-in-use": case("registries.DeleteRegistry", pb.NameRequest(name="src"),
                                   CONFLICT, "'src'", "used by tasks: t"),
    # task specs
    "task-empty-name": case("tasks.CreateTask", task(""), INVALID, "task.name", "required"),
    "task-spaced-name": case("tasks.CreateTask", task(" t"), INVALID, "task.name", "space"),
    "task-control-name": case("tasks.CreateTask", task("t\nINFO forged"), INVALID,
                              "name", "control characters"),
    "task-no-source": case("tasks.CreateTask", pb.TaskSpec(
        name="x", target=pb.Endpoint(registry="dst", repository="b")), INVALID,
        "task.source", "required"),
    "task-bad-regex": case("tasks.CreateTask", task("x", tags=pb.TagFilter(include=["ok", "("])),
                           INVALID, "task.tags.include[1]", "regular expression"),
    "task-bad-exclude": case("tasks.CreateTask", task("x", tags=pb.TagFilter(exclude=["[a-"])),
                             INVALID, "task.tags.exclude[0]"),
    "task-bad-semver": case("tasks.CreateTask", task("x", tags=pb.TagFilter(semver=">=banana")),
                            INVALID, "task.tags.semver"),
    "task-bad-cron": case("tasks.CreateTask", task("x", cron_expression="61 * * * *"), INVALID,
                          "task.cron_expression"),
    "task-cron-fields": case("tasks.CreateTask", task("x", cron_expression="* * *"), INVALID,
                             "task.cron_expression", "3 fields"),
    "task-bad-platform": case("tasks.CreateTask", task("x", platforms=["linux"]), INVALID,
                              "task.platforms[0]", "os/arch"),
    "task-bad-architecture": case("tasks.CreateTask", task("x", architectures=["linux/amd64"]),
                                  INVALID, "task.architectures[0]"),
    "task-negative-latest": case("tasks.CreateTask", task("x", tags=pb.TagFilter(latest=-1)),
                                 INVALID, "task.tags.latest", "-1"),
    "task-unknown-registry": case("tasks.CreateTask", pb.TaskSpec(
        name="x", source=pb.Endpoint(registry="nope", repository="a"),
        target=pb.Endpoint(registry="dst", repository="b")), INVALID,
        "task.source.registry", "'nope'"),
    "task-source-is-target": case("tasks.CreateTask", pb.TaskSpec(
        name="x", source=pb.Endpoint(registry="src", repository="a"),
        target=pb.Endpoint(registry="src", repository="a")), INVALID,
        "task.target", "same"),
    "task-uppercase-repository": case("tasks.CreateTask", task("x", source="Library/Nginx"),
                                      INVALID, "task.source.repository", "lowercase"),
    "task-repository-with-tag": case("tasks.CreateTask", task("x", target="mirror/nginx:1.25"),
                                     INVALID, "task.target.repository", "tag"),
    "task-repository-double-slash": case("tasks.CreateTask", task("x", source="a//b"),
                                         INVALID, "task.source.repository"),
    "task-repository-empty": case("tasks.CreateTask", task("x", source=""), INVALID,
                                  "task.source.repository", "required"),
    "task-mega-name": case("tasks.CreateTask", task(BIG), INVALID,
                           "name", f"{MEGA} characters", "limit is 128"),
    "task-mega-regex": case("tasks.CreateTask", task("x", tags=pb.TagFilter(include=[BIG])),
                            INVALID, "task.tags.include[0]", "limit is 1024"),
    "task-mega-repository": case("tasks.CreateTask", task("x", source=BIG), INVALID,
                                 "task.source.repository", "limit is 255"),
    "task-repository-256": case("tasks.CreateTask", task("x", source="r" * 256), INVALID,
                                "task.source.repository", "limit is 255"),
    "task-many-patterns": case("tasks.CreateTask",
                               task("x", tags=pb.TagFilter(exclude=["x"] * 10_000)), INVALID,
                               "task.tags.exclude", "10000 entries"),
    "task-duplicate": case("tasks.CreateTask", task("t"), TAKEN, "'t'"),
    "task-update-unknown": case("tasks.UpdateTask", task("no-such-task"), MISSING,
                                "no-such-task"),
    "task-update-invalid": case("tasks.UpdateTask", task("t", tags=pb.TagFilter(include=["("])),
                                INVALID, "task.tags.include[0]"),
    "task-get-unknown": case("tasks.GetTask", UNKNOWN_TASK, MISSING, "no-such-task"),
    "task-delete-unknown": case("tasks.DeleteTask", UNKNOWN_TASK, MISSING, "no-such-task"),
    "task-run-unknown": case("tasks.RunTask", UNKNOWN_TASK, MISSING, "no-such-task"),
    "task-stop-unknown": case("tasks.StopTask", UNKNOWN_TASK, MISSING, "no-such-task"),
    "task-enable-unknown": case("tasks.EnableTask", UNKNOWN_TASK, MISSING, "no-such-task"),
    "task-disable-unknown": case("tasks.DisableTask", UNKNOWN_TASK, MISSING, "no-such-task"),
    "task-plan-unknown": case("tasks.PlanTask", UNKNOWN_TASK, MISSING, "no-such-task"),
    "task-stop-idle": case("tasks.StopTask", pb.NameRequest(name="t"), CONFLICT, "'t'",
                           "not running"),
    "preview-lookahead": case("tasks.PreviewTags", pb.PreviewTagsRequest(
        spec=pb.TaskSpec(tags=pb.TagFilter(include=["^1(?=\\.)"])), tags=["1.0"]), INVALID,
        "spec.tags.include[0]", "RE2", "lookaround"),
    "task-backreference": case("tasks.CreateTask", task("x", tags=pb.TagFilter(
        exclude=[r"(a)\1"])), INVALID, "task.tags.exclude[0]", "RE2", "backreferences"),
    "preview-bad-regex": case("tasks.PreviewTags", pb.PreviewTagsRequest(
        spec=pb.TaskSpec(tags=pb.TagFilter(include=["("])), tags=["1.0"]), INVALID,
        "spec.tags.include[0]"),
    "schedule-huge": case("tasks.PreviewSchedule", pb.PreviewScheduleRequest(
        cron_expression="1," * 200_000 + "1 * * * *"), INVALID, "cron_expression", "limit is 256"),
    "schedule-count": case("tasks.PreviewSchedule", pb.PreviewScheduleRequest(
        cron_expression="@hourly", count=2**31 - 1), INVALID, "count"),
    # executions
    "execution-get-unknown": case("executions.GetExecution", pb.ExecutionRequest(id=999_999),
                                  MISSING, "999999"),
    "execution-get-negative": case("executions.GetExecution", pb.ExecutionRequest(id=-5),
                                   MISSING, "-5"),
    "execution-negative-page-size": case("executions.GetExecution", pb.ExecutionRequest(
        id=1, page_size=-1), INVALID, "page_size", "negative"),
    "execution-forged-page-token": case("executions.GetExecution", pb.ExecutionRequest(
        id=1, page_token="1 OR 1=1"), INVALID, "page_token", "next_page_token"),
    "execution-mega-page-token": case("executions.GetExecution", pb.ExecutionRequest(
        id=1, page_token=BIG), INVALID, "page_token"),
    "execution-logs-unknown": case("executions.GetLogs", pb.LogsRequest(execution_id=999_999),
                                   MISSING, "999999"),
    "execution-logs-negative-offset": case("executions.GetLogs",
                                           pb.LogsRequest(execution_id=1, offset=-1), INVALID,
                                           "offset", "negative"),
    "execution-logs-negative-limit": case("executions.GetLogs",
                                          pb.LogsRequest(execution_id=1, limit=-1), INVALID,
                                          "limit", "negative"),
    "execution-retry-unknown": case("executions.RetryFailed", pb.ExecutionRequest(id=999_999),
                                    MISSING, "999999"),
    "executions-negative-limit": case("executions.ListExecutions",
                                      pb.ListExecutionsRequest(limit=-1), INVALID, "limit",
                                      "negative"),
    "executions-negative-before": case("executions.ListExecutions",
                                       pb.ListExecutionsRequest(before_id=-1), INVALID,
                                       "before_id"),
    "executions-bad-status": case("executions.ListExecutions",
                                  pb.ListExecutionsRequest(status=[S.EXECUTION_STATUS_UNSPECIFIED]),
                                  INVALID, "status[0]"),
    # Apply: all or nothing
    "apply-malformed-yaml": case("control.Apply", pb.ApplyRequest(
        yaml="registries:\n  new: {url: [\n", source="bad.yaml"), INVALID,
        "bad.yaml", "line", "invalid YAML"),
    "apply-not-a-mapping": case("control.Apply", pb.ApplyRequest(yaml="- a\n- b\n"), INVALID,
                                "top level must be a mapping"),
    "apply-wrong-types": case("control.Apply", pb.ApplyRequest(
        yaml="registries:\n  new: {url: 5}\n", source="s.yaml"), INVALID,
        'registries "new": url: expected a string'),
    "apply-partly-valid": case("control.Apply", pb.ApplyRequest(yaml=(
        "registries:\n  new: {url: 'https://r.example'}\n"
        "sync_rules:\n  - {name: n, source: {registry: new, repository: a},\n"
        "     target: {registry: dst, repository: b}, tags: {include: ['(']}}\n"
    ), source="p.yaml"), INVALID, "p.yaml", 'sync_rules[0] "n": tags.include[0]'),
    "apply-bad-global": case("control.Apply", pb.ApplyRequest(
        yaml="global: {concurrency: 0}\nregistries:\n  new: {url: 'https://r.example'}\n"),
        INVALID, "concurrency", "at least 1"),
    # the daemon's environment is never read for a client (it was, and sent where the client chose)
    "apply-env-reference": case("control.Apply", pb.ApplyRequest(
        yaml="registries:\n  new: {url: 'https://r.example', username: u,"
             " password: '${HOME}'}\n", source="env.yaml"), INVALID,
        "env.yaml", "password", "${HOME} is not expanded"),
    "apply-env-reference-default": case("control.Apply", pb.ApplyRequest(
        yaml="registries:\n  new: {url: 'https://${REG_HOST:-r.example}'}\n"), INVALID,
        "url", "${REG_HOST} is not expanded"),
    "apply-aliases": case("control.Apply", pb.ApplyRequest(
        yaml="registries:\n  new: &r {url: 'https://r.example'}\n  other: *r\n",
        source="a.yaml"), INVALID, "a.yaml", "line 2", "anchors and aliases"),
    "apply-merge-key": case("control.Apply", pb.ApplyRequest(yaml=(
        "base: &b {url: 'https://r.example'}\nregistries:\n  new: {<<: *b}\n")), INVALID,
        "anchors and aliases"),
    "apply-over-a-mebibyte": case("control.Apply", pb.ApplyRequest(
        yaml="# " + "x" * MEGA + "\nregistries: {}\n"), INVALID, "bytes", "limit is 1048576"),
    "apply-too-many-rules": case("control.Apply", pb.ApplyRequest(
        yaml="sync_rules:\n" + "  - {name: r}\n" * 10_001), INVALID,
        "sync_rules", "10001 rules", "limit is 10000"),
    "apply-mega-value": case("control.Apply", pb.ApplyRequest(  # half: a whole one is too big
        yaml=f"registries:\n  new: {{url: 'https://{BIG[: MEGA // 2]}'}}\n"), INVALID,
        "url", "limit is 2048"),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_request_is_refused_precisely_and_changes_nothing(api: Api, name: str) -> None:
    bad = CASES[name]
    method = getattr(getattr(api, bad.service), bad.method)
    before = await api.snapshot()
    start = time.monotonic()
    error = await api.error(method, bad.request)
    elapsed = time.monotonic() - start
    assert error.code() == bad.code, error.details()
    details = error.details() or ""
    for needle in bad.needles:
        assert needle in details, f"{needle!r} not in {details!r}"
    assert len(details) <= MESSAGE_MAX, f"{len(details)} characters echoed"
    assert elapsed < 5.0  # megabytes are refused by their length, not parsed at length
    assert await api.snapshot() == before


async def test_ca_file_answers_do_not_tell_which_paths_exist(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ca_file` answers told a client which paths exist on the daemon's machine ("file not
    found", "not a file", "not readable"): now one answer, quoting only what was sent."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    cert, _ = self_signed(tmp_path)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(cert.read_bytes())
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any) -> int:
        if os.fspath(path) == str(locked):  # root reads every file: EACCES as the kernel says it
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    probes = ["/nonexistent/ca.pem", "/etc/passwd", "/etc", "/dev/zero", "/proc/self/environ",
              str(tmp_path / "dir"), str(tmp_path / "garbage.pem"), str(locked), "relative.pem"]
    before = await api.snapshot()
    answers = set()
    for method, name in ((api.registries.CreateRegistry, "new"),
                         (api.registries.UpdateRegistry, "src")):
        for probe in probes:
            error = await api.error(method, registry(name, url=CLOSED, ca_file=probe))
            assert error.code() == INVALID
            details = error.details() or ""
            assert details.startswith(f"registry.ca_file: {repr(probe)[:40]}")
            answers.add(re.sub(r"^registry\.ca_file: '.*' cannot", "registry.ca_file: PATH cannot",
                               details))
    assert answers == {f"registry.ca_file: PATH {CA_FILE_UNREADABLE}"}
    assert await api.snapshot() == before
    created = await api(api.registries.CreateRegistry, registry(url=CLOSED, ca_file=str(cert)))
    assert created.ca_file == str(cert)


async def test_a_megabyte_unknown_name_is_not_found_without_being_echoed(api: Api) -> None:
    before = await api.snapshot()
    for method in (api.registries.GetRegistry, api.tasks.GetTask, api.tasks.RunTask,
                   api.registries.DeleteRegistry):
        error = await api.error(method, pb.NameRequest(name=BIG))
        assert error.code() == Code.NOT_FOUND, (error.code(), (error.details() or "")[:200])
        # gRPC carries details in a header: over 8 KiB a client may refuse the whole answer
        assert len(error.details() or "") <= 8192
    assert await api.snapshot() == before


async def test_apply_listing_many_problems_is_one_clear_refusal(api: Api) -> None:
    rules = "".join(
        f"  - {{name: r{i}, source: {{registry: nope{i}, repository: a}},"
        f" target: {{registry: dst, repository: b}}}}\n" for i in range(300))
    before = await api.snapshot()
    error = await api.error(api.control.Apply,
                            pb.ApplyRequest(yaml=f"sync_rules:\n{rules}", source="many.yaml"))
    assert error.code() == Code.INVALID_ARGUMENT
    assert "300 configuration problems" in (error.details() or "")
    assert await api.snapshot() == before


async def test_huge_list_limit_is_capped_and_answers(api: Api) -> None:
    reply = await api(api.executions.ListExecutions,
                      pb.ListExecutionsRequest(limit=2**31 - 1, before_id=2**62))
    assert [e.task for e in reply.executions] == ["t"]
    logs = await api(api.executions.GetLogs, pb.LogsRequest(
        execution_id=reply.executions[0].id, offset=2**62, limit=2**31 - 1))
    assert list(logs.lines) == []


async def test_watch_of_an_unknown_execution_is_not_found(api: Api) -> None:
    error = await api.stream_error(pb.WatchRequest(execution_id=424242))
    assert error.code() == Code.NOT_FOUND and "424242" in (error.details() or "")


async def test_refused_requests_leave_the_daemon_serving(api: Api) -> None:
    """After a burst of junk the state is intact and valid requests still work."""
    for bad in list(CASES.values())[:20]:
        await api.error(getattr(getattr(api, bad.service), bad.method), bad.request)
    created = await api(api.tasks.CreateTask, task("fine", target="c"))
    assert created.spec.name == "fine"
    names = [t.spec.name for t in (await api(api.tasks.ListTasks, pb.ListTasksRequest())).tasks]
    assert sorted(names) == ["fine", "t"]


# CPU-heavy requests never hold the daemon: a cheap RPC answers within a second meanwhile --------


async def assert_responsive_during(api: Api, method: Callable[..., Any], request: Any,
                                   code: grpc.StatusCode | None) -> grpc.RpcError | Any:
    """Sends `request`; meanwhile another process times GetStatus (no store hop, no registry)."""
    probe = Probe(api.address)
    await trio.to_thread.run_sync(probe.start)
    outcome: list[Any] = []
    try:
        outcome.append(await api(method, request))
    except grpc.RpcError as exc:
        outcome.append(exc)
    longest = await trio.to_thread.run_sync(probe.stop)
    assert longest < 1.0, f"a cheap RPC waited {longest:.1f} s behind the hostile one"
    [result] = outcome
    if code is None:
        assert not isinstance(result, grpc.RpcError), result.details()
    else:
        assert isinstance(result, grpc.RpcError) and result.code() == code, result
    return result


async def test_catastrophic_regex_preview_neither_freezes_nor_fails(api: Api) -> None:
    """`^(a+)+$` over 28 a's and a "!" takes Python's backtracking `re` ~2^28 steps."""
    evil = "a" * 28 + "!"
    tags = [evil, *(f"a{i}" for i in range(20_000))]
    reply = await assert_responsive_during(api, api.tasks.PreviewTags, pb.PreviewTagsRequest(
        spec=pb.TaskSpec(tags=pb.TagFilter(include=["^(a+)+$"])), tags=tags), None)
    assert list(reply.kept) == []
    assert {d.tag for d in reply.dropped} >= {evil, "a0"}


async def test_apply_alias_bomb_is_refused_without_freezing(api: Api) -> None:
    """~150 KB: 50,000 aliases of a rule with 256 patterns took today's daemon ~10 s of CPU."""
    rule = ("{name: r, source: {registry: src, repository: a}, target: {registry: dst,"
            " repository: b}, tags: {include: [" + ",".join(["'^a'"] * 256) + "]}}")
    text = f"r: &r {rule}\nsync_rules: [{','.join(['*r'] * 50_000)}]\n"
    before = await api.snapshot()
    error = await assert_responsive_during(
        api, api.control.Apply, pb.ApplyRequest(yaml=text, source="bomb.yaml"), INVALID)
    assert "anchors and aliases" in error.details()
    assert await api.snapshot() == before


async def test_apply_of_a_big_document_is_parsed_off_the_daemon_thread(api: Api) -> None:
    """~1 MiB of plain rules (seconds of parsing), refused at its last rule: nothing stored."""
    rules = "".join(
        f"  - {{name: r{i}, source: {{registry: src, repository: a{i}}}, target: {{registry:"
        f" dst, repository: b{i}}}, tags: {{include: ['^1\\\\.2[0-9]\\\\.'],"
        f" exclude: ['-alpine$']}}}}\n" for i in range(5_500))
    text = f"sync_rules:\n{rules}  - {{name: last, source: {{registry: nope, repository: a}}}}\n"
    assert len(text) < MEGA
    before = await api.snapshot()
    error = await assert_responsive_during(
        api, api.control.Apply, pb.ApplyRequest(yaml=text, source="big.yaml"), INVALID)
    assert "'nope'" in error.details()
    assert await api.snapshot() == before
