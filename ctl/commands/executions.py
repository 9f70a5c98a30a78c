"""`regsyncctl logs EXECUTION [-f]` and `executions list|show`.

EXECUTION is an id, `latest` (the newest execution of any task) or a task name (that task's
newest execution), so `regsyncctl logs nightly -f` needs no id lookup first.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import specs, views
from ..client import EXIT_OK, CtlError
from ..context import Ctx
from ..follow import execution_status, finished, follow, get_execution
from ..tree import Commands, group, leaf

_PAGE_MAX = 500  # the daemon's largest page


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    logs = leaf(commands, "logs", _logs, common, "print an execution's log")
    add_execution_argument(logs)
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing new lines until the execution ends")
    area = group(commands, "executions", "past and running executions")
    listing = leaf(area, "list", _list, common, "list executions, newest first")
    listing.add_argument("--task", help="only this task's executions")
    listing.add_argument("--status", action="append", type=specs.status, metavar="STATUS",
                         help=f"only these states (repeatable): {', '.join(specs.STATUS_WORDS)}")
    listing.add_argument("--limit", type=specs.non_negative_int, default=50,
                         help="at most this many (default 50)")
    add_execution_argument(leaf(area, "show", _show, common,
                                "one execution with its result per tag"))


def add_execution_argument(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("execution", metavar="EXECUTION",
                     help="an execution id, `latest`, or a task name (its newest execution)")


def resolve_execution(ctx: Ctx, ref: str) -> int:
    """The execution id EXECUTION names.

    Raises:
        CtlError: no such task, or no execution yet.
    """
    if ref.isdigit():
        return int(ref)
    d = ctx.daemon
    task = "" if ref == "latest" else ref
    reply: pb.ListExecutionsResponse = d.call(
        d.executions.ListExecutions, pb.ListExecutionsRequest(task=task, limit=1)
    )
    if reply.executions:
        return reply.executions[0].id
    if not task:
        raise CtlError("no executions yet")
    d.call(d.tasks.GetTask, pb.NameRequest(name=task))  # NOT_FOUND names an unknown task
    raise CtlError(f"task {task} has no executions yet")


def _logs(ctx: Ctx) -> int:
    execution_id = resolve_execution(ctx, ctx.args.execution)
    printer = _LogPrinter(ctx, execution_id)
    if not ctx.args.follow:
        reply = printer.fetch_reply(0)
        if ctx.json:
            ctx.emit(reply, "")
        else:
            printer.show_all(reply.lines)
        return EXIT_OK
    if finished(execution_status(ctx.daemon, execution_id).status):
        printer.fetch(0)
        return EXIT_OK
    stored = 0

    def fetch_stored() -> None:
        nonlocal stored
        stored = printer.fetch(0)

    follow(ctx.daemon, execution_id, logs=True, on_event=printer.event,
           on_watching=fetch_stored)
    printer.fetch(stored)  # lines logged between the fetch and the watcher joining
    return EXIT_OK


class _LogPrinter:
    """Prints each log line once, whether it came from the store or the live stream."""

    def __init__(self, ctx: Ctx, execution_id: int) -> None:
        self._ctx = ctx
        self._id = execution_id
        self._seen: set[tuple[float, str, str]] = set()

    def fetch_reply(self, offset: int) -> pb.LogsResponse:
        """Every stored line from `offset` on, in one reply: the daemon sends pages of at most
        5000 (a run of 100,000 tags logs far more than one message's 4 MiB)."""
        d = self._ctx.daemon
        request = pb.LogsRequest(execution_id=self._id, offset=offset)
        reply: pb.LogsResponse = d.call(d.executions.GetLogs, request)
        while reply.lines and offset + len(reply.lines) < reply.total:
            request.offset = offset + len(reply.lines)
            page: pb.LogsResponse = d.call(d.executions.GetLogs, request)
            if not page.lines:
                break
            reply.lines.extend(page.lines)
            reply.total = page.total
        return reply

    def fetch(self, offset: int) -> int:
        """Show stored lines from `offset`, page after page; return the offset after them."""
        d = self._ctx.daemon
        request = pb.LogsRequest(execution_id=self._id, offset=offset)
        while True:
            reply: pb.LogsResponse = d.call(d.executions.GetLogs, request)
            self.show_all(reply.lines)
            request.offset += len(reply.lines)
            if not reply.lines or request.offset >= reply.total:
                return int(request.offset)

    def show_all(self, lines: Iterable[ev.LogLine]) -> None:
        for line in lines:
            self.show(line)

    def event(self, event: pb.WatchEvent) -> None:
        if event.WhichOneof("event") == "log":
            self.show(event.log)

    def show(self, line: ev.LogLine) -> None:
        key = (line.time, line.level, line.message)
        if key in self._seen:
            return
        self._seen.add(key)
        if self._ctx.json:
            self._ctx.emit_line(line)
        else:
            self._ctx.print(views.log_line(line))


def _list(ctx: Ctx) -> int:
    d = ctx.daemon
    want = ctx.args.limit or 50
    request = pb.ListExecutionsRequest(task=ctx.args.task or "", status=ctx.args.status or [],
                                       limit=min(want, _PAGE_MAX))
    result = pb.ListExecutionsResponse()
    while True:
        reply: pb.ListExecutionsResponse = d.call(d.executions.ListExecutions, request)
        result.executions.extend(reply.executions)
        result.next_before_id = reply.next_before_id
        if len(result.executions) >= want or not reply.next_before_id:
            break
        request.before_id = reply.next_before_id
        request.limit = min(want - len(result.executions), _PAGE_MAX)
    ctx.emit(result, views.executions_table(result.executions))
    return EXIT_OK


def _show(ctx: Ctx) -> int:
    detail = get_execution(ctx.daemon, resolve_execution(ctx, ctx.args.execution))
    ctx.emit(detail, views.execution_detail(detail))
    return EXIT_OK
