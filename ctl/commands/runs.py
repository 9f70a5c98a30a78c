"""`regsyncctl run|stop|retry|plan`: starting, following and stopping executions.

`run` and `retry` follow the execution by default on a terminal (a live status line, then the
summary) and exit 0 only if it SUCCEEDED, so `regsyncctl run nightly && deploy` does what it
says. Ctrl-C only detaches: the execution keeps running in the daemon.
"""

from __future__ import annotations

import argparse

from regsync.common.text import escape_controls
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import views
from ..client import EXIT_FAILED, EXIT_OK
from ..context import Ctx
from ..follow import follow
from ..progress import ProgressView, summary
from ..tree import Commands, leaf
from .executions import add_execution_argument, resolve_execution


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    run = leaf(commands, "run", _run, common, "start a run of a task now")
    run.add_argument("task")
    run.add_argument("--force-prune", action="store_true",
                     help="prune even past the task's prune_max, this once")
    _follow_flag(run)
    leaf(commands, "stop", _stop, common,
         "stop the task's running execution (finished tags stay)").add_argument("task")
    retry = leaf(commands, "retry", _retry, common,
                 "run again only the tags that failed in an execution")
    add_execution_argument(retry)
    _follow_flag(retry)
    leaf(commands, "plan", _plan, common,
         "dry run: what a run would copy or skip, and why, and what it would prune"
         " (nothing is written)"
         ).add_argument("task")


def _follow_flag(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--follow", action=argparse.BooleanOptionalAction, default=None,
                     help="show live progress until the end (default: on a terminal)")


def _run(ctx: Ctx) -> int:
    d = ctx.daemon
    request = pb.NameRequest(name=ctx.args.task, force_prune=ctx.args.force_prune)
    execution: pb.Execution = d.call(d.tasks.RunTask, request)
    return _started(ctx, execution)


def _retry(ctx: Ctx) -> int:
    d = ctx.daemon
    failed_id = resolve_execution(ctx, ctx.args.execution)
    execution: pb.Execution = d.call(d.executions.RetryFailed, pb.ExecutionRequest(id=failed_id))
    return _started(ctx, execution)


def _started(ctx: Ctx, execution: pb.Execution) -> int:
    following = ctx.args.follow if ctx.args.follow is not None else ctx.is_tty
    if not following:
        ctx.emit(execution, f"execution {execution.id} of task {execution.task} started")
        return EXIT_OK
    detail = _follow_json(ctx, execution) if ctx.json else _follow_text(ctx, execution)
    return EXIT_OK if detail.execution.status == pb.EXECUTION_STATUS_SUCCEEDED else EXIT_FAILED


def _follow_json(ctx: Ctx, execution: pb.Execution) -> pb.ExecutionDetail:
    """JSON lines: every WatchEvent, then the final ExecutionDetail."""
    detail = follow(ctx.daemon, execution.id, on_event=ctx.emit_line)
    ctx.emit_line(detail)
    return detail


def _follow_text(ctx: Ctx, execution: pb.Execution) -> pb.ExecutionDetail:
    ctx.print(f"execution {execution.id} of task {escape_controls(execution.task)} started")
    view = ProgressView(ctx.out, live=ctx.is_tty)
    try:
        detail = follow(ctx.daemon, execution.id, on_event=view.event)
    finally:
        view.close()
    ctx.print(summary(detail))
    return detail


def _stop(ctx: Ctx) -> int:
    d = ctx.daemon
    execution: pb.Execution = d.call(d.tasks.StopTask, pb.NameRequest(name=ctx.args.task))
    ctx.emit(execution, f"execution {execution.id} of task {execution.task} stopped")
    return EXIT_OK


def _plan(ctx: Ctx) -> int:
    d = ctx.daemon
    plan: pb.PlanResponse = d.call(d.tasks.PlanTask, pb.NameRequest(name=ctx.args.task))
    ctx.emit(plan, views.plan_text(ctx.args.task, plan))
    return EXIT_FAILED if any(t.action == "fail" for t in plan.tags) else EXIT_OK
