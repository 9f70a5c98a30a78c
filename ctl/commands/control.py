"""`regsyncctl status|stats|apply`: the daemon as a whole (`completion` is in `parser`)."""

from __future__ import annotations

import argparse

from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import views
from ..client import EXIT_OK, EXIT_USAGE, CtlError
from ..context import Ctx
from ..prepare import prepare
from ..tree import Commands, leaf


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    leaf(commands, "status", _status, common,
         "daemon version and uptime, running executions, next scheduled runs")
    leaf(commands, "stats", _stats, common, "totals: tasks, executions, bytes copied today")
    apply = leaf(commands, "apply", _apply, common,
                 "create or update registries and tasks from YAML (the seed config format)")
    apply.add_argument("-f", "--file", required=True, metavar="FILE", help="YAML file, - = stdin")
    apply.add_argument("--expand-env", action="store_true",
                       help="expand ${VAR} from this shell's environment before sending (the "
                            "daemon takes an applied file literally)")


def _status(ctx: Ctx) -> int:
    d = ctx.daemon
    status: pb.Status = d.call(d.control.GetStatus, pb.StatusRequest())
    ctx.emit(status, views.status_text(status))
    return EXIT_OK


def _stats(ctx: Ctx) -> int:
    d = ctx.daemon
    stats: pb.Stats = d.call(d.control.GetStats, pb.StatsRequest())
    ctx.emit(stats, views.stats_text(stats))
    return EXIT_OK


def _apply(ctx: Ctx) -> int:
    path: str = ctx.args.file
    if path == "-":
        text, source = ctx.stdin.read(), "<stdin>"
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                text, source = handle.read(), path
        except OSError as exc:
            raise CtlError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
        except UnicodeDecodeError:
            raise CtlError(f"cannot read {path}: not UTF-8 text", EXIT_USAGE) from None
    text = prepare(text, source=source, expand_env=ctx.args.expand_env, environ=ctx.environ)
    d = ctx.daemon
    reply: pb.ApplyResponse = d.call(d.control.Apply, pb.ApplyRequest(yaml=text, source=source))
    ctx.emit(reply, views.apply_text(reply))
    return EXIT_OK

