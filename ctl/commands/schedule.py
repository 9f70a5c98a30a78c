"""`regsyncctl schedule preview CRON`: when a schedule fires, as the daemon's scheduler sees it.

The daemon reads the expression as it reads a task's `--cron` (`@daily` and the other aliases
included) and answers with its own fire times, in UTC, the zone it schedules in; a mistake is
refused in the words `tasks add` would get.
"""

from __future__ import annotations

import argparse
from datetime import UTC

from regsync.proto.regsync.v1 import regsync_pb2 as pb

from ..client import EXIT_OK
from ..context import Ctx
from ..output import when
from ..tree import Commands, group, leaf


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    area = group(commands, "schedule", "schedules: what a cron expression means to the daemon")
    preview = leaf(area, "preview", _preview, common,
                   "the next times a cron expression fires, in UTC (the daemon's scheduler)")
    preview.add_argument("cron", help='five fields, e.g. "0 2 * * *", or @hourly, @daily, ...')
    preview.add_argument("-n", "--count", type=int, default=5, metavar="N",
                         help="how many fire times, 1 to 50 (default 5)")


def _preview(ctx: Ctx) -> int:
    d = ctx.daemon
    request = pb.PreviewScheduleRequest(cron_expression=ctx.args.cron, count=ctx.args.count)
    reply: pb.PreviewScheduleResponse = d.call(d.tasks.PreviewSchedule, request)
    ctx.emit(reply, preview_text(reply))
    return EXIT_OK


def preview_text(reply: pb.PreviewScheduleResponse) -> str:
    """`@daily` then one UTC time a line; an empty expression is "manual runs only"."""
    if not reply.cron_expression:
        return "no schedule: manual runs only"
    return "\n".join([reply.cron_expression,
                      *(f"  {when(t, UTC)} UTC" for t in reply.next_runs)])
