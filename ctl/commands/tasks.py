"""`regsyncctl tasks list|show|add|edit|rm|enable|disable`: the sync rules."""

from __future__ import annotations

import argparse

from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import specs, views
from ..client import EXIT_OK
from ..context import Ctx
from ..output import when
from ..tree import Commands, group, leaf


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    area = group(commands, "tasks", "tasks: what to copy from where to where, and when")
    leaf(area, "list", _list, common, "list tasks with their next and last run")
    leaf(area, "show", _show, common, "show one task").add_argument("name")
    add = leaf(area, "add", _add, common, "add a task")
    add.add_argument("name")
    add.add_argument("--source", required=True, type=specs.endpoint, metavar="REG/REPO",
                     help="registry name / repository, e.g. dockerhub/library/nginx; a glob"
                     " over the catalog such as 'harbor/team-a/**' (quote it)")
    add.add_argument("--target", required=True, type=specs.endpoint, metavar="REG/REPO")
    _filters(add)
    add.add_argument("--disabled", action="store_true", help="create with the schedule off")
    edit = leaf(area, "edit", _edit, common,
                "change the given settings of a task (a list flag replaces that list)")
    edit.add_argument("name")
    edit.add_argument("--source", type=specs.endpoint, metavar="REG/REPO")
    edit.add_argument("--target", type=specs.endpoint, metavar="REG/REPO")
    _filters(edit)
    edit.add_argument("--clear", action="append", choices=specs.CLEARABLE, metavar="FIELD",
                      help=f"empty this setting first (repeatable): {', '.join(specs.CLEARABLE)}")
    leaf(area, "rm", _rm, common, "delete a task and its history").add_argument("name")
    leaf(area, "enable", _enable, common, "turn the task's schedule on").add_argument("name")
    leaf(area, "disable", _disable, common,
         "turn the task's schedule off (manual runs still work)").add_argument("name")


def _filters(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--include", action="append", metavar="RE",
                     help="keep tags matching this regex (repeatable; default all)")
    sub.add_argument("--exclude", action="append", metavar="RE",
                     help="drop tags matching this regex (repeatable)")
    sub.add_argument("--exclude-repo", action="append", metavar="GLOB",
                     help="glob tasks: leave out these source repositories (repeatable)")
    sub.add_argument("--semver", metavar="RANGE", help='version range, e.g. ">=1.20 <2"')
    sub.add_argument("--latest", type=specs.non_negative_int, metavar="N",
                     help="keep the newest N tags (0 = all)")
    sub.add_argument("--arch", action="append", metavar="A",
                     help="architecture to keep from multi-platform images (repeatable)")
    sub.add_argument("--platform", action="append", metavar="P",
                     help="platform os/arch[/variant] to keep (repeatable)")
    sub.add_argument("--cron", metavar="EXPR",
                     help='five-field schedule, e.g. "0 2 * * *" (empty = manual only)')
    sub.add_argument("--prune", action=argparse.BooleanOptionalAction, default=None,
                     help="after the copies, DELETE every target tag the filters do not keep"
                     " (the target then mirrors the selection, whoever wrote its tags)")
    sub.add_argument("--prune-max", type=specs.prune_max, metavar="N|N%",
                     help="a prune deleting more target tags than this stops (default 50%%)")
    sub.add_argument("--referrers", action=argparse.BooleanOptionalAction, default=None,
                     help="signatures, SBOMs and attestations follow the images (default: on)")
    sub.add_argument("--artifact-type", action="append", metavar="T",
                     help="only referrers of this artifact type, e.g. application/spdx+json "
                     "(repeatable; default all)")


def _list(ctx: Ctx) -> int:
    d = ctx.daemon
    reply: pb.ListTasksResponse = d.call(d.tasks.ListTasks, pb.ListTasksRequest())
    ctx.emit(reply, views.tasks_table(reply.tasks))
    return EXIT_OK


def _show(ctx: Ctx) -> int:
    d = ctx.daemon
    task: pb.Task = d.call(d.tasks.GetTask, pb.NameRequest(name=ctx.args.name))
    ctx.emit(task, views.task_detail(task))
    return EXIT_OK


def _add(ctx: Ctx) -> int:
    d = ctx.daemon
    task: pb.Task = d.call(d.tasks.CreateTask, specs.new_task(ctx.args))
    ctx.emit(task, f"task {task.spec.name} added{_next(task)}")
    return EXIT_OK


def _edit(ctx: Ctx) -> int:
    d = ctx.daemon
    current: pb.Task = d.call(d.tasks.GetTask, pb.NameRequest(name=ctx.args.name))
    task: pb.Task = d.call(d.tasks.UpdateTask, specs.edited_task(current.spec, ctx.args))
    ctx.emit(task, f"task {task.spec.name} updated{_next(task)}")
    return EXIT_OK


def _rm(ctx: Ctx) -> int:
    d = ctx.daemon
    reply: pb.DeleteResponse = d.call(d.tasks.DeleteTask, pb.NameRequest(name=ctx.args.name))
    ctx.emit(reply, f"task {ctx.args.name} deleted")
    return EXIT_OK


def _enable(ctx: Ctx) -> int:
    d = ctx.daemon
    task: pb.Task = d.call(d.tasks.EnableTask, pb.NameRequest(name=ctx.args.name))
    ctx.emit(task, f"task {task.spec.name} enabled{_next(task)}")
    return EXIT_OK


def _disable(ctx: Ctx) -> int:
    d = ctx.daemon
    task: pb.Task = d.call(d.tasks.DisableTask, pb.NameRequest(name=ctx.args.name))
    ctx.emit(task, f"task {task.spec.name} disabled")
    return EXIT_OK


def _next(task: pb.Task) -> str:
    return f"; next run {when(task.next_run)}" if task.HasField("next_run") else ""
