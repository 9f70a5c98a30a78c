"""regsyncctl driven as a user would, in-process through `main([...])` and as the installed
console script, against a real gRPC server running a small fake of the four services.

The fake is deliberately dumb (dicts and scripted Watch streams): it checks the CLI's side of the
contract, and it records what the CLI sent (requests, metadata). The real daemon's end-to-end
test is separate.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from regsync.ctl.main import main
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

pytestmark = pytest.mark.integration

REGSYNCCTL = str(Path(sys.executable).parent / "regsyncctl")
T0 = 1_714_564_800.0
SUCCEEDED, FAILED, RUNNING = (pb.EXECUTION_STATUS_SUCCEEDED, pb.EXECUTION_STATUS_FAILED,
                              pb.EXECUTION_STATUS_RUNNING)


def log(n: int, message: str) -> ev.LogLine:
    return ev.LogLine(time=T0 + n, level="info", message=message)


@dataclass
class Fake:
    """The daemon's state and the record of what clients sent."""

    token: str | None = None
    registries: dict[str, pb.RegistrySpec] = field(default_factory=dict)
    tasks: dict[str, pb.TaskSpec] = field(default_factory=dict)
    executions: dict[int, pb.Execution] = field(default_factory=dict)
    # per task: the status its runs end in, and whether Watch stays silent (a late joiner)
    outcome: dict[str, pb.ExecutionStatus.ValueType] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    logs: dict[int, list[ev.LogLine]] = field(default_factory=dict)
    live_logs: dict[int, list[ev.LogLine]] = field(default_factory=dict)
    final_logs: dict[int, list[ev.LogLine]] = field(default_factory=dict)  # stored at the end
    calls: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    address: str = ""

    def record(self, name: str, request: Any, context: grpc.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata())
        snapshot = type(request)()
        snapshot.CopyFrom(request)  # as sent, whatever the fake does to it later
        self.calls.append((name, snapshot, metadata))
        if self.token is not None and metadata.get("authorization") != f"Bearer {self.token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API token")

    def sent(self, name: str) -> list[Any]:
        return [request for called, request, _ in self.calls if called == name]

    def start(self, task: str, context: grpc.ServicerContext) -> pb.Execution:
        if task not in self.tasks:
            context.abort(grpc.StatusCode.NOT_FOUND, f"task {task!r} not found")
        execution = pb.Execution(id=len(self.executions) + 1, task=task, status=RUNNING,
                                 trigger=pb.TRIGGER_MANUAL)
        execution.started.FromSeconds(int(T0))
        self.executions[execution.id] = execution
        return execution

    def finish(self, execution_id: int) -> pb.Execution:
        execution = self.executions[execution_id]
        execution.status = self.outcome.get(execution.task, SUCCEEDED)
        execution.finished.FromSeconds(int(T0) + 3)
        self.logs[execution_id] = self.final_logs.get(execution_id, self.logs.get(execution_id,
                                                                                  []))
        execution.counters.CopyFrom(ev.Counters(tags_total=2, tags_copied=1, tags_skipped=1,
                                                bytes_copied=5 * 1024**2, blobs_copied=2))
        return execution


class Registries(rpc.RegistryServiceServicer):
    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def CreateRegistry(self, request: pb.RegistrySpec, context: Any) -> pb.Registry:
        self.fake.record("CreateRegistry", request, context)
        if request.name in self.fake.registries:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"registry {request.name!r} exists")
        self.fake.registries[request.name] = request
        return _registry(request)

    def GetRegistry(self, request: pb.NameRequest, context: Any) -> pb.Registry:
        self.fake.record("GetRegistry", request, context)
        if request.name not in self.fake.registries:
            context.abort(grpc.StatusCode.NOT_FOUND, f"registry {request.name!r} not found")
        return _registry(self.fake.registries[request.name])

    def UpdateRegistry(self, request: pb.RegistrySpec, context: Any) -> pb.Registry:
        self.fake.record("UpdateRegistry", request, context)
        old = self.fake.registries[request.name]
        if not request.HasField("password") and old.HasField("password"):
            request.password = old.password
        self.fake.registries[request.name] = request
        return _registry(request)

    def DeleteRegistry(self, request: pb.NameRequest, context: Any) -> pb.DeleteResponse:
        self.fake.record("DeleteRegistry", request, context)
        users = [t.name for t in self.fake.tasks.values()
                 if request.name in (t.source.registry, t.target.registry)]
        if users:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"registry {request.name!r} is used by tasks: {', '.join(users)}")
        del self.fake.registries[request.name]
        return pb.DeleteResponse()

    def TestRegistry(self, request: pb.NameRequest, context: Any) -> pb.TestRegistryResponse:
        self.fake.record("TestRegistry", request, context)
        if request.name == "hub":
            return pb.TestRegistryResponse(ok=True, reachable=True, auth_ok=True,
                                           api_version="registry/2.0", latency_ms=3)
        return pb.TestRegistryResponse(reachable=True, message="credentials refused",
                                       error_kind="auth")

    def ListRegistries(self, request: Any, context: Any) -> pb.ListRegistriesResponse:
        self.fake.record("ListRegistries", request, context)
        return pb.ListRegistriesResponse(
            registries=[_registry(r) for r in self.fake.registries.values()])


def _registry(spec: pb.RegistrySpec) -> pb.Registry:
    return pb.Registry(name=spec.name, url=spec.url, username=spec.username,
                       password_set=bool(spec.password), insecure=spec.insecure, qps=spec.qps)


class Tasks(rpc.TaskServiceServicer):
    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def CreateTask(self, request: pb.TaskSpec, context: Any) -> pb.Task:
        self.fake.record("CreateTask", request, context)
        if request.source.registry not in self.fake.registries:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"task.source.registry: unknown registry {request.source.registry!r}")
        self.fake.tasks[request.name] = request
        return pb.Task(spec=request)

    def GetTask(self, request: pb.NameRequest, context: Any) -> pb.Task:
        self.fake.record("GetTask", request, context)
        if request.name not in self.fake.tasks:
            context.abort(grpc.StatusCode.NOT_FOUND, f"task {request.name!r} not found")
        return pb.Task(spec=self.fake.tasks[request.name])

    def UpdateTask(self, request: pb.TaskSpec, context: Any) -> pb.Task:
        self.fake.record("UpdateTask", request, context)
        self.fake.tasks[request.name] = request
        return pb.Task(spec=request)

    def ListTasks(self, request: Any, context: Any) -> pb.ListTasksResponse:
        self.fake.record("ListTasks", request, context)
        return pb.ListTasksResponse(tasks=[pb.Task(spec=s) for s in self.fake.tasks.values()])

    def RunTask(self, request: pb.NameRequest, context: Any) -> pb.Execution:
        self.fake.record("RunTask", request, context)
        return self.fake.start(request.name, context)

    def StopTask(self, request: pb.NameRequest, context: Any) -> pb.Execution:
        self.fake.record("StopTask", request, context)
        running = [e for e in self.fake.executions.values()
                   if e.task == request.name and e.status == RUNNING]
        if not running:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"task {request.name!r} is not running")
        running[0].status = pb.EXECUTION_STATUS_STOPPED
        return running[0]

    def EnableTask(self, request: pb.NameRequest, context: Any) -> pb.Task:
        self.fake.record("EnableTask", request, context)
        self.fake.tasks[request.name].enabled = True
        task = pb.Task(spec=self.fake.tasks[request.name])
        task.next_run.FromSeconds(int(T0) + 60)
        return task

    def DisableTask(self, request: pb.NameRequest, context: Any) -> pb.Task:
        self.fake.record("DisableTask", request, context)
        self.fake.tasks[request.name].enabled = False
        return pb.Task(spec=self.fake.tasks[request.name])

    def DeleteTask(self, request: pb.NameRequest, context: Any) -> pb.DeleteResponse:
        self.fake.record("DeleteTask", request, context)
        del self.fake.tasks[request.name]
        return pb.DeleteResponse()

    def PlanTask(self, request: pb.NameRequest, context: Any) -> pb.PlanResponse:
        self.fake.record("PlanTask", request, context)
        return pb.PlanResponse(tags=[
            pb.PlannedTag(tag="1.25", action="copy", reason="new tag"),
            pb.PlannedTag(tag="1.26", action="fail", reason="manifest unknown"),
        ])


class Executions(rpc.ExecutionServiceServicer):
    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def GetExecution(self, request: pb.ExecutionRequest, context: Any) -> pb.ExecutionDetail:
        self.fake.record("GetExecution", request, context)
        if request.id not in self.fake.executions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"execution {request.id} not found")
        execution = self.fake.executions[request.id]
        tags = []
        if execution.status == FAILED:
            tags = [ev.TagResult(tag="1.26", outcome=ev.TAG_OUTCOME_FAILED,
                                 reason="blob upload refused", error_kind="remote")]
        return pb.ExecutionDetail(execution=execution, tags=tags)

    def ListExecutions(self, request: pb.ListExecutionsRequest,
                       context: Any) -> pb.ListExecutionsResponse:
        self.fake.record("ListExecutions", request, context)
        found = [e for e in sorted(self.fake.executions.values(), key=lambda e: -e.id)
                 if request.task in ("", e.task)
                 and (not request.status or e.status in request.status)]
        return pb.ListExecutionsResponse(executions=found[:request.limit or 50])

    def GetLogs(self, request: pb.LogsRequest, context: Any) -> pb.LogsResponse:
        self.fake.record("GetLogs", request, context)
        return pb.LogsResponse(lines=self.fake.logs.get(request.execution_id, [])[
            request.offset:])

    def RetryFailed(self, request: pb.ExecutionRequest, context: Any) -> pb.Execution:
        self.fake.record("RetryFailed", request, context)
        parent = self.fake.executions[request.id]
        execution = self.fake.start(parent.task, context)
        execution.trigger, execution.parent_id = pb.TRIGGER_RETRY, parent.id
        return execution


class Control(rpc.ControlServiceServicer):
    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def GetStatus(self, request: Any, context: Any) -> pb.Status:
        self.fake.record("GetStatus", request, context)
        return pb.Status(version="0.1.0-fake", uptime_seconds=65, store="/tmp/fake.db")

    def Apply(self, request: pb.ApplyRequest, context: Any) -> pb.ApplyResponse:
        self.fake.record("Apply", request, context)
        if "oops" in request.yaml:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{request.source}: registries[0].url: missing")
        return pb.ApplyResponse(registries_created=["hub"], tasks_updated=["nginx"])

    def Watch(self, request: pb.WatchRequest, context: Any) -> Iterator[pb.WatchEvent]:
        self.fake.record("Watch", request, context)
        execution = self.fake.executions[request.execution_id]
        if execution.task in self.fake.silent:
            while context.is_active():  # a late joiner: the run ended before it subscribed
                time.sleep(0.02)
            return
        deadline = time.monotonic() + 5
        while request.logs and not self.fake.sent("GetLogs") and time.monotonic() < deadline:
            time.sleep(0.01)  # let the client read the stored lines first: a fixed interleaving
        one = pb.WatchEvent(execution_id=execution.id, task=execution.task)
        yield _event(one, execution=execution, current_tag="1.25")
        for counters in (ev.Counters(tags_total=2, bytes_copied=1024**2),
                         ev.Counters(tags_total=2, tags_copied=1, bytes_copied=5 * 1024**2)):
            yield _event(one, progress=counters, current_tag="1.25")
        yield _event(one, tag=ev.TagResult(tag="1.25", outcome=ev.TAG_OUTCOME_COPIED,
                                           digest="sha256:" + "c" * 64))
        for line in self.fake.live_logs.get(execution.id, []) if request.logs else []:
            yield _event(one, log=line)
        yield _event(one, execution=self.fake.finish(execution.id))


def _event(base: pb.WatchEvent, **fields: Any) -> pb.WatchEvent:
    event = pb.WatchEvent()
    event.CopyFrom(base)
    for name, value in fields.items():
        if isinstance(value, str):
            setattr(event, name, value)
        else:
            getattr(event, name).CopyFrom(value)
    return event


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = Fake()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    # PreviewTags and GetStats are left to the base classes: they answer UNIMPLEMENTED
    rpc.add_RegistryServiceServicer_to_server(Registries(state), server)
    rpc.add_TaskServiceServicer_to_server(Tasks(state), server)  # type: ignore[abstract]
    rpc.add_ExecutionServiceServicer_to_server(Executions(state), server)
    rpc.add_ControlServiceServicer_to_server(Control(state), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    state.address = f"127.0.0.1:{port}"
    state.registries["hub"] = pb.RegistrySpec(name="hub", url="https://hub.example")
    state.tasks["nginx"] = pb.TaskSpec(name="nginx",
                                       source=pb.Endpoint(registry="hub", repository="nginx"),
                                       target=pb.Endpoint(registry="hub", repository="m/nginx"))
    try:
        yield state
    finally:
        server.stop(0)


@dataclass
class Result:
    code: int
    out: str
    err: str


def ctl(fake: Fake, *argv: str, stdin: str = "", env: dict[str, str] | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()
    codes: list[int] = []

    def run() -> None:
        codes.append(main(["--server", fake.address, *argv], stdout=out, stderr=err,
                          stdin=io.StringIO(stdin), environ=env or {}))

    # in a thread with a deadline: a follow that never ends fails the test, not the suite
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert codes, f"regsyncctl {' '.join(argv)} did not return within 30 s"
    assert "Traceback" not in err.getvalue()
    return Result(codes[0], out.getvalue(), err.getvalue())


# --- run --follow --------------------------------------------------------------------------

def test_run_follow_to_success(fake: Fake) -> None:
    result = ctl(fake, "run", "nginx", "--follow")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "execution 1 of task nginx started"
    assert "copied  1.25  sha256:cccccccccccc" in lines
    assert any(line.startswith("[-----") for line in lines)  # plain progress lines
    assert lines[-1].startswith("execution 1 of task nginx SUCCEEDED in 3.0s: 2/2 (1 copied, "
                                "1 skipped, 0 failed); 5.0 MiB copied")
    assert fake.sent("Watch") == [pb.WatchRequest(execution_id=1, logs=False)]


def test_run_follow_exits_1_when_the_run_fails_and_lists_failed_tags(fake: Fake) -> None:
    fake.outcome["nginx"] = FAILED
    result = ctl(fake, "run", "nginx", "--follow")
    assert result.code == 1
    assert "execution 1 of task nginx FAILED" in result.out
    assert "  failed  1.26: [remote] blob upload refused" in result.out


def test_run_follow_json_lines(fake: Fake) -> None:
    result = ctl(fake, "-o", "json", "run", "nginx", "--follow")
    assert result.code == 0
    docs = [json.loads(line) for line in result.out.splitlines()]
    assert [next(k for k in ("progress", "tag", "execution") if k in d) for d in docs[:-1]] == [
        "execution", "progress", "progress", "tag", "execution"]
    assert all(d["execution_id"] == "1" for d in docs[:-1])
    final = docs[-1]
    assert final["execution"]["status"] == "EXECUTION_STATUS_SUCCEEDED"
    assert final["execution"]["counters"]["bytes_copied"] == str(5 * 1024**2)


def test_follow_ends_even_when_the_watcher_joined_too_late(fake: Fake) -> None:
    fake.silent.add("nginx")
    execution = fake.start("nginx", grpc_context_stub())
    fake.finish(execution.id)

    def end_the_retry_quietly() -> None:
        while not fake.sent("Watch"):
            time.sleep(0.01)
        fake.finish(2)

    threading.Thread(target=end_the_retry_quietly, daemon=True).start()
    result = ctl(fake, "retry", "1", "--follow")  # retry of #1 runs #2; Watch says nothing
    assert result.code == 0, result.err
    assert "execution 2 of task nginx SUCCEEDED" in result.out
    assert fake.sent("RetryFailed") == [pb.ExecutionRequest(id=1)]


def grpc_context_stub() -> Any:
    class Context:
        def abort(self, code: grpc.StatusCode, details: str) -> None:
            raise AssertionError(details)

    return Context()


def test_run_without_follow_returns_at_once(fake: Fake) -> None:
    result = ctl(fake, "run", "nginx")  # not a terminal: no follow by default
    assert (result.code, result.out) == (0, "execution 1 of task nginx started\n")
    assert fake.sent("Watch") == []


# --- logs ------------------------------------------------------------------------------------

def test_logs_follow_prints_each_line_once_in_order(fake: Fake) -> None:
    execution = fake.start("nginx", grpc_context_stub())
    lines = [log(i, f"line {i}") for i in range(1, 5)]
    fake.logs[execution.id] = lines[:2]
    fake.live_logs[execution.id] = lines[1:3]  # line 2 again (overlap), line 4 never streamed
    fake.final_logs[execution.id] = lines  # the last fetch finds line 4 in the store
    result = ctl(fake, "logs", "nginx", "-f")
    assert result.code == 0, result.err
    assert [line.split(maxsplit=3)[3] for line in result.out.splitlines()] == [
        "line 1", "line 2", "line 3", "line 4"]
    assert fake.sent("Watch") == [pb.WatchRequest(execution_id=1, logs=True)]
    assert [r.offset for r in fake.sent("GetLogs")] == [0, 2]


def test_logs_of_a_finished_execution_by_id_latest_and_task(fake: Fake) -> None:
    execution = fake.start("nginx", grpc_context_stub())
    fake.finish(execution.id)
    fake.logs[execution.id] = [log(1, "copied 1.25")]
    for ref in ("1", "latest", "nginx"):
        result = ctl(fake, "logs", ref)
        assert result.code == 0
        assert result.out.endswith("INFO    copied 1.25\n")
    follow = ctl(fake, "logs", "latest", "-f", "-o", "json")
    assert [json.loads(line)["message"] for line in follow.out.splitlines()] == ["copied 1.25"]
    assert json.loads(ctl(fake, "-o", "json", "logs", "1").out)["lines"][0]["level"] == "info"


def test_logs_of_a_task_without_executions_or_an_unknown_task(fake: Fake) -> None:
    none_yet = ctl(fake, "logs", "nginx")
    assert (none_yet.code, none_yet.err) == (1, "regsyncctl: task nginx has no executions yet\n")
    unknown = ctl(fake, "logs", "ghost")
    assert (unknown.code, unknown.err) == (1, "regsyncctl: task 'ghost' not found\n")


# --- errors ----------------------------------------------------------------------------------

def test_not_found_prints_the_daemons_message_and_exits_1(fake: Fake) -> None:
    result = ctl(fake, "tasks", "show", "ghost")
    assert (result.code, result.out, result.err) == (1, "", "regsyncctl: task 'ghost' not found\n")


def test_invalid_argument_names_the_field(fake: Fake) -> None:
    result = ctl(fake, "tasks", "add", "t", "--source", "nowhere/x", "--target", "hub/y")
    assert result.code == 1
    assert result.err == "regsyncctl: task.source.registry: unknown registry 'nowhere'\n"


def test_unreachable_daemon_exits_2_with_one_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--server", "127.0.0.1:1", "status"], stdout=out, stderr=err, environ={})
    assert code == 2
    assert err.getvalue().startswith("regsyncctl: cannot reach regsyncd at 127.0.0.1:1: ")
    assert err.getvalue().count("\n") == 1


def test_token_is_sent_as_metadata_and_never_printed(fake: Fake, tmp_path: Path) -> None:
    fake.token = "s3cret-token"
    without = ctl(fake, "status")
    assert without.code == 3
    assert "--token-file" in without.err
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    for argv, env in ((["--token-file", str(token_file)], {}),
                      ([], {"REGSYNC_API_TOKEN": "s3cret-token"})):
        result = ctl(fake, *argv, "status", env=env)
        assert result.code == 0, result.err
        assert "version:  0.1.0-fake" in result.out
    assert fake.calls[-1][2]["authorization"] == "Bearer s3cret-token"
    wrong = ctl(fake, "--token", "not-it-token", "status")
    assert wrong.code == 3
    assert "rejected" in wrong.err and "not-it" not in wrong.err + wrong.out


# --- registries, tasks, the rest ------------------------------------------------------------

def test_registry_add_reads_the_password_from_stdin_and_edit_keeps_it(fake: Fake) -> None:
    added = ctl(fake, "registries", "add", "priv", "--url", "https://r.example", "--username",
                "alice", "--password-stdin", stdin="pa55word\n")
    assert (added.code, added.out) == (0, "registry priv added\n")
    assert fake.sent("CreateRegistry")[0].password == "pa55word"
    edited = ctl(fake, "registries", "edit", "priv", "--qps", "4")
    assert edited.code == 0
    update = fake.sent("UpdateRegistry")[0]
    assert not update.HasField("password") and update.qps == 4 and update.username == "alice"
    shown = ctl(fake, "-o", "json", "registries", "show", "priv")
    assert json.loads(shown.out)["password_set"] is True
    assert "pa55word" not in added.out + edited.out + shown.out


def test_registry_with_a_user_but_no_way_to_read_a_password_is_refused(fake: Fake) -> None:
    result = ctl(fake, "registries", "add", "priv", "--url", "https://r", "--username", "bob")
    assert result.code == 64
    assert "--password-stdin" in result.err
    assert fake.sent("CreateRegistry") == []


def test_tasks_edit_gets_modifies_and_updates(fake: Fake) -> None:
    result = ctl(fake, "tasks", "edit", "nginx", "--include", "^1\\.", "--cron", "0 3 * * *")
    assert (result.code, result.out) == (0, "task nginx updated\n")
    spec = fake.sent("UpdateTask")[0]
    assert list(spec.tags.include) == ["^1\\."] and spec.cron_expression == "0 3 * * *"
    assert spec.source == pb.Endpoint(registry="hub", repository="nginx")


def test_json_documents_parse(fake: Fake) -> None:
    for argv, key in ((["tasks", "list"], "tasks"), (["registries", "list"], "registries"),
                      (["status"], "version")):
        result = ctl(fake, "-o", "json", *argv)
        assert result.code == 0
        assert key in json.loads(result.out)
    tasks = json.loads(ctl(fake, "tasks", "list", "-o", "json").out)["tasks"]
    assert tasks[0]["spec"]["source"] == {"registry": "hub", "repository": "nginx", "exclude": []}


def test_executions_list_filters(fake: Fake) -> None:
    for _ in range(3):
        fake.finish(fake.start("nginx", grpc_context_stub()).id)
    fake.executions[2].status = FAILED
    result = ctl(fake, "executions", "list", "--task", "nginx", "--status", "failed",
                 "--limit", "5")
    assert result.code == 0
    assert fake.sent("ListExecutions")[-1] == pb.ListExecutionsRequest(
        task="nginx", status=[FAILED], limit=5)
    assert [line.split()[0] for line in result.out.splitlines()] == ["ID", "2"]


def test_stop_enable_disable_rm(fake: Fake) -> None:
    assert ctl(fake, "run", "nginx").code == 0
    stopped = ctl(fake, "stop", "nginx")
    assert (stopped.code, stopped.out) == (0, "execution 1 of task nginx stopped\n")
    again = ctl(fake, "stop", "nginx")
    assert (again.code, again.err) == (1, "regsyncctl: task 'nginx' is not running\n")
    enabled = ctl(fake, "tasks", "enable", "nginx")
    assert enabled.out.startswith("task nginx enabled; next run ")
    assert ctl(fake, "tasks", "disable", "nginx").out == "task nginx disabled\n"
    in_use = ctl(fake, "registries", "rm", "hub")
    assert (in_use.code, in_use.err) == (1, "regsyncctl: registry 'hub' is used by tasks: nginx\n")
    assert ctl(fake, "tasks", "rm", "nginx").out == "task nginx deleted\n"
    assert ctl(fake, "-o", "json", "registries", "rm", "hub").out == "{}\n"


def test_registry_test_exit_code_follows_the_verdict(fake: Fake) -> None:
    good = ctl(fake, "registries", "test", "hub")
    assert (good.code, good.out) == (0, "registry hub: ok (3 ms, registry/2.0)\n")
    bad = ctl(fake, "registries", "test", "priv")
    assert bad.code == 1
    assert "FAILED [auth]: credentials refused" in bad.out


def test_plan_exits_1_when_a_tag_would_fail(fake: Fake) -> None:
    result = ctl(fake, "plan", "nginx")
    assert result.code == 1
    assert "1 to copy, 0 unchanged, 1 failing" in result.out


def test_apply_from_stdin_and_its_errors(fake: Fake, tmp_path: Path) -> None:
    result = ctl(fake, "apply", "-f", "-", stdin="registries: []\n")
    assert (result.code, result.out) == (0, "registry hub created\ntask nginx updated\n")
    assert fake.sent("Apply")[0] == pb.ApplyRequest(yaml="registries: []\n", source="<stdin>")
    bad = tmp_path / "bad.yaml"
    bad.write_text("oops")
    refused = ctl(fake, "apply", "-f", str(bad))
    assert (refused.code, refused.err) == (1, f"regsyncctl: {bad}: registries[0].url: missing\n")
    missing = ctl(fake, "apply", "-f", str(tmp_path / "none.yaml"))
    assert missing.code == 64 and "No such file" in missing.err


def test_unimplemented_rpc_is_explained(fake: Fake) -> None:
    result = ctl(fake, "stats")  # the fake has no GetStats
    assert result.code == 1
    assert "does not support this request" in result.err


# --- the installed console script -------------------------------------------------------------

def run_script(*argv: str, stdin: str = "", env: dict[str, str] | None = None,
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REGSYNC_")}
    return subprocess.run([REGSYNCCTL, *argv], input=stdin, capture_output=True, text=True,
                          env={**environ, **(env or {})}, timeout=timeout, check=False)


def test_script_run_follow_and_json(fake: Fake) -> None:
    done = run_script("run", "nginx", "--follow", env={"REGSYNC_SERVER": fake.address})
    assert done.returncode == 0, done.stderr
    assert "SUCCEEDED" in done.stdout
    listed = run_script("--server", fake.address, "executions", "list", "-o", "json")
    assert json.loads(listed.stdout)["executions"][0]["status"] == "EXECUTION_STATUS_SUCCEEDED"


def test_script_errors_are_one_line_without_traceback(fake: Fake) -> None:
    down = run_script("--server", "127.0.0.1:1", "tasks", "list")
    assert down.returncode == 2
    assert down.stderr.startswith("regsyncctl: cannot reach regsyncd at 127.0.0.1:1")
    missing = run_script("--server", fake.address, "registries", "show", "ghost")
    assert (missing.returncode, missing.stderr) == (1, "regsyncctl: registry 'ghost' not found\n")


def test_script_password_stdin_is_never_echoed(fake: Fake) -> None:
    done = run_script("--server", fake.address, "registries", "add", "priv", "--url",
                      "https://r", "--username", "u", "--password-stdin", stdin="t0ps3cret\n")
    assert done.returncode == 0, done.stderr
    assert "t0ps3cret" not in done.stdout + done.stderr
    assert fake.sent("CreateRegistry")[0].password == "t0ps3cret"


def test_script_ctrl_c_while_following_exits_130_quietly(fake: Fake) -> None:
    fake.silent.add("nginx")  # the run never ends in the fake
    process = subprocess.Popen([REGSYNCCTL, "--server", fake.address, "run", "nginx",
                                "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "execution 1 of task nginx started\n"
        deadline = time.monotonic() + 10
        while not fake.sent("Watch") and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 130
    assert err == ""
