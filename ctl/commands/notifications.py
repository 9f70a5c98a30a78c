"""`regsyncctl notifications list|show|add|edit|rm`: webhooks and their last delivery.

A secret never comes from the command line (other users see argv): `--secret-stdin` reads it
from a pipe. Replies never carry it, nor the URL's path (a chat webhook URL is a credential).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from regsync.proto.regsync.v1 import regsync_pb2 as pb

from ..client import EXIT_OK
from ..context import Ctx
from ..output import NONE, fields, or_none, table, when
from ..tree import Commands, group, leaf

EVENTS = ("execution.succeeded", "execution.failed", "execution.stopped", "task.stale")


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    area = group(commands, "notifications", "webhooks told when executions end or tasks go stale")
    leaf(area, "list", _list, common, "list webhooks with their last delivery")
    leaf(area, "show", _show, common, "show one webhook").add_argument("name")
    for name, handler, help in (
        ("add", _add, "add a webhook"),
        ("edit", _edit, ("replace a webhook's settings (the secret is kept unless "
                         "--secret-stdin or --no-secret is given)")),
    ):
        sub = leaf(area, name, handler, common, help)
        sub.add_argument("name")
        sub.add_argument("--url", required=True, help="http(s) URL the POST goes to")
        sub.add_argument("--event", action="append", dest="events", required=True,
                         choices=EVENTS, help="an event to send (repeatable)")
        sub.add_argument("--task", action="append", dest="tasks", default=[],
                         help="only this task (repeatable; default every task)")
        sub.add_argument("--format", choices=("json", "slack"), default="json",
                         help="body format (default json)")
        sub.add_argument("--secret-stdin", action="store_true",
                         help="read the HMAC-SHA256 signing secret from stdin")
        if name == "edit":
            sub.add_argument("--no-secret", action="store_true", help="remove the secret")
    leaf(area, "rm", _rm, common, "delete a webhook").add_argument("name")


def _spec(ctx: Ctx) -> pb.NotificationSpec:
    spec = pb.NotificationSpec(name=ctx.args.name, url=ctx.args.url, events=ctx.args.events,
                               tasks=ctx.args.tasks, format=ctx.args.format)
    if ctx.args.secret_stdin:
        spec.secret = ctx.stdin.read().rstrip("\r\n")
    elif getattr(ctx.args, "no_secret", False):
        spec.secret = ""
    return spec


def _list(ctx: Ctx) -> int:
    d = ctx.daemon
    reply: pb.ListNotificationsResponse = d.call(d.notifications.ListNotifications,
                                                 pb.ListNotificationsRequest())
    ctx.emit(reply, notifications_table(reply.notifications))
    return EXIT_OK


def _show(ctx: Ctx) -> int:
    d = ctx.daemon
    hook: pb.Notification = d.call(d.notifications.GetNotification,
                                   pb.NameRequest(name=ctx.args.name))
    ctx.emit(hook, notification_detail(hook))
    return EXIT_OK


def _add(ctx: Ctx) -> int:
    d = ctx.daemon
    hook: pb.Notification = d.call(d.notifications.CreateNotification, _spec(ctx))
    ctx.emit(hook, f"webhook {hook.name} added")
    return EXIT_OK


def _edit(ctx: Ctx) -> int:
    d = ctx.daemon
    hook: pb.Notification = d.call(d.notifications.UpdateNotification, _spec(ctx))
    ctx.emit(hook, f"webhook {hook.name} updated")
    return EXIT_OK


def _rm(ctx: Ctx) -> int:
    d = ctx.daemon
    reply: pb.DeleteResponse = d.call(d.notifications.DeleteNotification,
                                      pb.NameRequest(name=ctx.args.name))
    ctx.emit(reply, f"webhook {ctx.args.name} deleted")
    return EXIT_OK


def last_delivery(hook: pb.Notification) -> str:
    if not hook.HasField("last_delivery"):
        return NONE
    last = hook.last_delivery
    if last.ok:
        return f"ok ({last.code}) {last.event} at {when(last.time)}"
    tries = f" after {last.attempts} attempts" if last.attempts > 1 else ""
    return f"FAILED{tries}: {last.error} ({last.event} at {when(last.time)})"


def notifications_table(hooks: Sequence[pb.Notification]) -> str:
    rows = [[h.name, h.url, ", ".join(h.events), or_none(", ".join(h.tasks)), h.format,
             "set" if h.secret_set else NONE, last_delivery(h)] for h in hooks]
    return table(["NAME", "URL", "EVENTS", "TASKS", "FORMAT", "SECRET", "LAST DELIVERY"], rows)


def notification_detail(h: pb.Notification) -> str:
    return fields([
        ("name", h.name), ("url", h.url), ("events", ", ".join(h.events)),
        ("tasks", or_none(", ".join(h.tasks)) if h.tasks else "every task"),
        ("format", h.format), ("secret", "set" if h.secret_set else "not set"),
        ("last delivery", last_delivery(h)),
    ])
