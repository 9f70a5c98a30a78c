"""An in-memory regsyncd for the panel's tests: the four services on a real (sync) grpc server.

It keeps just enough state to behave like the daemon from the panel's side (names unique,
passwords write-only, registries in use cannot be deleted, Watch streams events) and records
requests so tests can check what the panel sent. `fail_next(code, details)` injects one error.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.runtime.cron import preview
from regsync.daemon.values import globs
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

Ctx = Any  # grpc.ServicerContext


FAKE_NOW = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)  # a Thursday: PreviewSchedule counts from it


def unimplemented(context: Ctx) -> NoReturn:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "the panel does not use this")
    raise AssertionError("abort raises")


class State:
    """Everything the fake daemon knows; guarded by one lock (the server is threaded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.registries: dict[str, pb.Registry] = {}
        self.tasks: dict[str, pb.Task] = {}
        self.executions: dict[int, pb.ExecutionDetail] = {}
        self.logs: dict[int, list[ev.LogLine]] = {}
        self.source_tags: dict[tuple[str, str], list[str]] = {}
        self.catalogs: dict[str, list[str]] = {}  # a registry's repositories (globs)
        self.requests: list[tuple[str, Any]] = []
        self.watchers: list[queue.Queue[pb.WatchEvent]] = []
        self.failure: tuple[grpc.StatusCode, str] | None = None
        self.next_id = 1

    def publish(self, event: pb.WatchEvent) -> None:
        for watcher in list(self.watchers):
            watcher.put(event)


class Base:
    def __init__(self, state: State, token: str | None) -> None:
        self.s = state
        self.token = token

    def enter(self, name: str, request: Any, context: Ctx) -> None:
        """Record the call, then enforce the token and any injected failure."""
        with self.s.lock:
            self.s.requests.append((name, request))
            failure, self.s.failure = self.s.failure, None
        if self.token is not None:
            sent = dict(context.invocation_metadata()).get("authorization")
            if sent != f"Bearer {self.token}":
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid API token")
        if failure is not None:
            context.abort(*failure)


class Registries(Base, rpc.RegistryServiceServicer):
    def CreateRegistry(self, request: pb.RegistrySpec, context: Ctx) -> pb.Registry:
        self.enter("CreateRegistry", request, context)
        if not request.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "registry.name: required")
        if request.name in self.s.registries:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"registry {request.name!r} exists")
        registry = pb.Registry(name=request.name, url=request.url, username=request.username,
                               password_set=bool(request.password), insecure=request.insecure,
                               ca_file=request.ca_file, qps=request.qps)
        self.s.registries[request.name] = registry
        return registry

    def UpdateRegistry(self, request: pb.RegistrySpec, context: Ctx) -> pb.Registry:
        self.enter("UpdateRegistry", request, context)
        old = self._get(request.name, context)
        password_set = bool(request.password) if request.HasField("password") else old.password_set
        # as the daemon does: a kept password stays bound to the url and user it was given for
        moved = (request.url, request.username) != (old.url, old.username)
        dropped = not request.HasField("password") and moved and old.password_set
        registry = pb.Registry(name=request.name, url=request.url, username=request.username,
                               password_set=password_set and not dropped,
                               insecure=request.insecure, ca_file=request.ca_file,
                               qps=request.qps)
        self.s.registries[request.name] = registry
        reply = pb.Registry()
        reply.CopyFrom(registry)
        reply.password_dropped = dropped
        return reply

    def ListRegistries(self, request: Any, context: Ctx) -> pb.ListRegistriesResponse:
        self.enter("ListRegistries", request, context)
        return pb.ListRegistriesResponse(registries=[self._with_users(r) for r in
                                                     sorted(self.s.registries.values(),
                                                            key=lambda r: r.name)])

    def GetRegistry(self, request: pb.NameRequest, context: Ctx) -> pb.Registry:
        self.enter("GetRegistry", request, context)
        return self._with_users(self._get(request.name, context))

    def DeleteRegistry(self, request: pb.NameRequest, context: Ctx) -> pb.DeleteResponse:
        self.enter("DeleteRegistry", request, context)
        users = self._with_users(self._get(request.name, context)).used_by
        if users:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"registry {request.name!r} is used by tasks: {', '.join(users)}")
        del self.s.registries[request.name]
        return pb.DeleteResponse()

    def TestRegistry(self, request: pb.NameRequest, context: Ctx) -> pb.TestRegistryResponse:
        self.enter("TestRegistry", request, context)
        self._get(request.name, context)
        return pb.TestRegistryResponse(ok=True, reachable=True, auth_ok=True,
                                       api_version="registry/2.0", latency_ms=3.0)

    def _get(self, name: str, context: Ctx) -> pb.Registry:
        if name not in self.s.registries:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no registry named {name!r}")
        return self.s.registries[name]

    def _with_users(self, registry: pb.Registry) -> pb.Registry:
        copy = pb.Registry()
        copy.CopyFrom(registry)
        copy.used_by[:] = sorted(t.spec.name for t in self.s.tasks.values()
                                 if registry.name in (t.spec.source.registry,
                                                      t.spec.target.registry))
        return copy


def _filter(tags: list[str], spec: pb.TaskSpec) -> tuple[list[str], list[pb.DroppedTag]]:
    """Include/exclude and newest-N by name order: enough to tell what the panel shows."""
    kept: list[str] = []
    dropped: list[pb.DroppedTag] = []
    for tag in tags:
        if spec.tags.include and not any(re.search(p, tag) for p in spec.tags.include):
            dropped.append(pb.DroppedTag(tag=tag, reason="not included"))
        elif any(re.search(p, tag) for p in spec.tags.exclude):
            dropped.append(pb.DroppedTag(tag=tag, reason="excluded"))
        else:
            kept.append(tag)
    kept.sort()
    if spec.tags.latest and len(kept) > spec.tags.latest:
        cut = len(kept) - spec.tags.latest
        dropped += [pb.DroppedTag(tag=t, reason=f"not among the newest {spec.tags.latest}")
                    for t in kept[:cut]]
        kept = kept[cut:]
    return kept, dropped


class Tasks(Base, rpc.TaskServiceServicer):
    def CreateTask(self, request: pb.TaskSpec, context: Ctx) -> pb.Task:
        self.enter("CreateTask", request, context)
        if request.name in self.s.tasks:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"task {request.name!r} exists")
        self._check(request, context)
        self.s.tasks[request.name] = pb.Task(spec=request)
        return self.s.tasks[request.name]

    def UpdateTask(self, request: pb.TaskSpec, context: Ctx) -> pb.Task:
        self.enter("UpdateTask", request, context)
        self._get(request.name, context).spec.CopyFrom(request)
        return self.s.tasks[request.name]

    def ListTasks(self, request: Any, context: Ctx) -> pb.ListTasksResponse:
        self.enter("ListTasks", request, context)
        return pb.ListTasksResponse(tasks=[self.s.tasks[n] for n in sorted(self.s.tasks)])

    def GetTask(self, request: pb.NameRequest, context: Ctx) -> pb.Task:
        self.enter("GetTask", request, context)
        return self._get(request.name, context)

    def DeleteTask(self, request: pb.NameRequest, context: Ctx) -> pb.DeleteResponse:
        self.enter("DeleteTask", request, context)
        self._get(request.name, context)
        del self.s.tasks[request.name]
        return pb.DeleteResponse()

    def RunTask(self, request: pb.NameRequest, context: Ctx) -> pb.Execution:
        self.enter("RunTask", request, context)
        task = self._get(request.name, context)
        if task.running:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"task {request.name!r} is already running")
        return start_execution(self.s, request.name)

    def StopTask(self, request: pb.NameRequest, context: Ctx) -> pb.Execution:
        self.enter("StopTask", request, context)
        task = self._get(request.name, context)
        if not task.running:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"task {request.name!r} is not running")
        return finish_execution(self.s, task.last_execution.id, pb.EXECUTION_STATUS_STOPPED)

    def EnableTask(self, request: pb.NameRequest, context: Ctx) -> pb.Task:
        self.enter("EnableTask", request, context)
        self._get(request.name, context).spec.enabled = True
        return self.s.tasks[request.name]

    def DisableTask(self, request: pb.NameRequest, context: Ctx) -> pb.Task:
        self.enter("DisableTask", request, context)
        self._get(request.name, context).spec.enabled = False
        return self.s.tasks[request.name]

    def PreviewTags(self, request: pb.PreviewTagsRequest,
                    context: Ctx) -> pb.PreviewTagsResponse:
        self.enter("PreviewTags", request, context)
        for pattern in (*request.spec.tags.include, *request.spec.tags.exclude):
            try:
                re.compile(pattern)
            except re.error as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"task.tags.include: bad regex {pattern!r}: {exc}")
        source = request.spec.source
        tags = list(request.tags) or self.s.source_tags.get(
            (source.registry, source.repository), [])
        kept, dropped = _filter(tags, request.spec)
        return pb.PreviewTagsResponse(kept=kept, dropped=dropped)

    def PreviewRepositories(self, request: pb.PreviewRepositoriesRequest,
                            context: Ctx) -> pb.PreviewRepositoriesResponse:
        """As regsyncd: the first `limit` matches in catalog order, each with its tag counts."""
        self.enter("PreviewRepositories", request, context)
        source, target = request.spec.source, request.spec.target
        found: list[pb.PreviewedRepository] = []
        truncated = False
        for name in self.s.catalogs.get(source.registry, []):
            captures = globs.match(source.repository, name)
            if captures is None:
                continue
            if len(found) == request.limit:
                truncated = True
                break
            tags = self.s.source_tags.get((source.registry, name), [])
            kept, _ = _filter(tags, request.spec)
            found.append(pb.PreviewedRepository(
                source=name, target=globs.expand(target.repository, captures), tags=len(tags),
                kept=len(kept)))
        return pb.PreviewRepositoriesResponse(repositories=found, truncated=truncated,
                                              limit=request.limit)

    def PreviewSchedule(self, request: pb.PreviewScheduleRequest,
                        context: Ctx) -> pb.PreviewScheduleResponse:
        """The daemon's own reading and arithmetic, at a fixed clock (FAKE_NOW)."""
        self.enter("PreviewSchedule", request, context)
        try:
            shown = preview(request.cron_expression, FAKE_NOW, request.count)
        except ConfigError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        reply = pb.PreviewScheduleResponse(cron_expression=shown.expression)
        for moment in shown.times:
            reply.next_runs.add().FromDatetime(moment)
        return reply

    def PlanTask(self, request: pb.NameRequest, context: Ctx) -> pb.PlanResponse:
        unimplemented(context)

    def _check(self, spec: pb.TaskSpec, context: Ctx) -> None:
        for field, endpoint in (("source", spec.source), ("target", spec.target)):
            if endpoint.registry not in self.s.registries:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"task.{field}.registry: unknown registry {endpoint.registry!r}")

    def _get(self, name: str, context: Ctx) -> pb.Task:
        if name not in self.s.tasks:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no task named {name!r}")
        return self.s.tasks[name]


def start_execution(state: State, task: str, *, trigger: int = pb.TRIGGER_MANUAL,
                    parent: int = 0, daemon: str = "") -> pb.Execution:
    with state.lock:
        execution = pb.Execution(id=state.next_id, task=task, trigger=trigger,  # type: ignore[arg-type]
                                 status=pb.EXECUTION_STATUS_RUNNING, parent_id=parent,
                                 counters=ev.Counters(tags_total=2), daemon=daemon)
        execution.started.GetCurrentTime()
        state.next_id += 1
        state.executions[execution.id] = pb.ExecutionDetail(execution=execution)
        state.logs[execution.id] = [ev.LogLine(time=time.time(), level="info",
                                               message=f"execution {execution.id} started")]
        state.tasks[task].last_execution.CopyFrom(execution)
        state.tasks[task].running = True
    state.publish(pb.WatchEvent(execution_id=execution.id, task=task, execution=execution))
    return execution


def finish_execution(state: State, execution_id: int, status: int,
                     tags: tuple[ev.TagResult, ...] = ()) -> pb.Execution:
    with state.lock:
        detail = state.executions[execution_id]
        detail.tags.extend(tags)
        execution = detail.execution
        execution.status = status  # type: ignore[assignment]
        execution.finished.GetCurrentTime()
        counters = execution.counters
        counters.tags_copied = sum(t.outcome == ev.TAG_OUTCOME_COPIED for t in detail.tags)
        counters.tags_failed = sum(t.outcome == ev.TAG_OUTCOME_FAILED for t in detail.tags)
        counters.tags_total = max(counters.tags_total, len(detail.tags))
        task = state.tasks.get(execution.task)
        if task is not None:
            task.last_execution.CopyFrom(execution)
            task.running = False
    state.publish(pb.WatchEvent(execution_id=execution_id, task=execution.task,
                                execution=execution))
    return execution


class Executions(Base, rpc.ExecutionServiceServicer):
    def ListExecutions(self, request: pb.ListExecutionsRequest,
                       context: Ctx) -> pb.ListExecutionsResponse:
        self.enter("ListExecutions", request, context)
        found = [d.execution for d in sorted(self.s.executions.values(),
                                             key=lambda d: -d.execution.id)
                 if (not request.task or d.execution.task == request.task)
                 and (not request.status or d.execution.status in request.status)]
        return pb.ListExecutionsResponse(executions=found[: request.limit or 50])

    def GetExecution(self, request: pb.ExecutionRequest, context: Ctx) -> pb.ExecutionDetail:
        """Pages the results as regsyncd does (at most 5000 a page), with offsets as tokens."""
        self.enter("GetExecution", request, context)
        if request.id not in self.s.executions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no execution {request.id}")
        whole = self.s.executions[request.id]
        start = int(request.page_token or 0)
        end = start + min(request.page_size or 1000, 5000)
        more = end < len(whole.tags)
        return pb.ExecutionDetail(execution=whole.execution, tags=whole.tags[start:end],
                                  next_page_token=str(end) if more else "",
                                  total_tags=len(whole.tags),
                                  new_repositories=whole.new_repositories if not start else [],
                                  removed_repositories=whole.removed_repositories
                                  if not start else [])

    def GetLogs(self, request: pb.LogsRequest, context: Ctx) -> pb.LogsResponse:
        self.enter("GetLogs", request, context)
        lines = self.s.logs.get(request.execution_id, [])
        limit = min(request.limit or 5000, 5000)  # pages as regsyncd does
        return pb.LogsResponse(lines=lines[request.offset:][:limit], total=len(lines))

    def RetryFailed(self, request: pb.ExecutionRequest, context: Ctx) -> pb.Execution:
        self.enter("RetryFailed", request, context)
        detail = self.GetExecution(request, context)
        if not detail.execution.counters.tags_failed:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nothing failed")
        return start_execution(self.s, detail.execution.task, trigger=pb.TRIGGER_RETRY,
                               parent=request.id)


class Control(Base, rpc.ControlServiceServicer):
    def GetStats(self, request: Any, context: Ctx) -> pb.Stats:
        self.enter("GetStats", request, context)
        statuses = [d.execution.status for d in self.s.executions.values()]
        ok = statuses.count(pb.EXECUTION_STATUS_SUCCEEDED)
        bad = statuses.count(pb.EXECUTION_STATUS_FAILED)
        return pb.Stats(tasks_total=len(self.s.tasks),
                        tasks_enabled=sum(t.spec.enabled for t in self.s.tasks.values()),
                        running=statuses.count(pb.EXECUTION_STATUS_RUNNING),
                        succeeded_today=ok, failed_today=bad, succeeded_total=ok,
                        failed_total=bad, executions_total=len(statuses),
                        registries_total=len(self.s.registries))

    def GetStatus(self, request: Any, context: Ctx) -> pb.Status:
        unimplemented(context)

    def Apply(self, request: Any, context: Ctx) -> pb.ApplyResponse:
        unimplemented(context)

    def Watch(self, request: pb.WatchRequest, context: Ctx) -> Iterator[pb.WatchEvent]:
        self.enter("Watch", request, context)
        inbox: queue.Queue[pb.WatchEvent] = queue.Queue()
        self.s.watchers.append(inbox)
        try:
            while context.is_active():
                try:
                    event = inbox.get(timeout=0.05)
                except queue.Empty:
                    continue
                wanted = request.logs or event.WhichOneof("event") != "log"
                if wanted and request.execution_id in (0, event.execution_id):
                    yield event
        finally:
            self.s.watchers.remove(inbox)


class FakeDaemon:
    """The fake on 127.0.0.1:<free port>; `stop()` / `start()` again simulate a restart."""

    def __init__(self, token: str | None = None) -> None:
        self.state = State()
        self.token = token
        self.port = 0
        self.server: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeDaemon:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        rpc.add_RegistryServiceServicer_to_server(Registries(self.state, self.token), server)
        rpc.add_TaskServiceServicer_to_server(Tasks(self.state, self.token), server)
        rpc.add_ExecutionServiceServicer_to_server(Executions(self.state, self.token), server)
        rpc.add_ControlServiceServicer_to_server(Control(self.state, self.token), server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self.server = server
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait()
            self.server = None

    # helpers for tests -------------------------------------------------------------------------
    def calls(self, name: str) -> list[Any]:
        with self.state.lock:
            return [request for method, request in self.state.requests if method == name]

    def fail_next(self, code: grpc.StatusCode, details: str) -> None:
        self.state.failure = (code, details)

    def add_registry(self, name: str, url: str = "http://127.0.0.1:5000") -> None:
        self.state.registries[name] = pb.Registry(name=name, url=url)

    def add_task(self, name: str, source: str = "src", target: str = "dst") -> None:
        spec = pb.TaskSpec(name=name, source=pb.Endpoint(registry=source, repository="app"),
                           target=pb.Endpoint(registry=target, repository="app"),
                           enabled=True, cron_expression="0 2 * * *")
        self.state.tasks[name] = pb.Task(spec=spec)

    def log(self, execution_id: int, message: str) -> None:
        line = ev.LogLine(time=time.time(), level="info", message=message)
        self.state.logs[execution_id].append(line)
        self.state.publish(pb.WatchEvent(execution_id=execution_id, log=line))


async def eventually(check: Any, timeout: float = 3.0) -> None:
    """Wait (on the asyncio loop, so the panel keeps running) until `check()` is true."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {check}")
        await asyncio.sleep(0.02)
