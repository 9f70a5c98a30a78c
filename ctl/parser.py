"""The command tree (stdlib argparse): global options, exit codes, and one module per area.

Global options are accepted before or after the command (`regsyncctl tasks list -o json`): every
subcommand inherits them with SUPPRESS defaults, so a value given late overrides the early one
and an absent one never resets it. `--ca-file` is the exception: after `registries add` it means
the registry's CA, so the daemon's CA is only accepted before the command.
"""

from __future__ import annotations

import argparse

from .client import DEFAULT_SERVER, EXIT_OK, SERVER_ENV, TOKEN_ENV
from .context import Ctx
from .tree import Commands, Parser, UsageError, leaf

__all__ = ["UsageError", "build"]

EPILOG = f"""\
exit codes:
  0    success
  1    the daemon refused the request (unknown name, invalid field, name taken, task running...),
       or the run / retry did not succeed, the plan has failing tags, the registry test failed
  2    cannot reach regsyncd
  3    regsyncd requires an API token, or rejected the one given
  64   the command line is wrong (nothing was sent)
  130  interrupted (Ctrl-C); a followed run keeps running in the daemon

environment:
  {SERVER_ENV}     daemon address, host:port or unix:PATH (default {DEFAULT_SERVER})
  {TOKEN_ENV}  API token, sent as "authorization: Bearer ..." metadata

-o json prints one JSON document per command (protobuf JSON mapping with proto field names;
int64 values are strings); `run --follow` and `logs -f` print JSON lines instead.
"""


def build() -> Parser:
    from .commands import control, executions, notifications, registries, runs, schedule, tasks

    parser = Parser(
        prog="regsyncctl", description="Drive regsyncd, the registry mirroring daemon.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_globals(parser, late=False)
    parser.add_argument("--ca-file", dest="server_ca_file", metavar="PEM",
                        help="CA certificates to verify the daemon's TLS certificate (implies "
                             "--tls; give it before the command)")
    common = argparse.ArgumentParser(add_help=False)
    _add_globals(common, late=True)
    commands: Commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)
    for module in (runs, executions, registries, tasks, schedule, control, notifications):
        module.register(commands, common)
    _add_completion(commands, common)
    return parser


def _add_completion(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Here, not in an area: its script is made from the whole tree `build` assembles."""
    completion = leaf(commands, "completion", _completion, common,
                      "print a shell completion script: "
                      "eval \"$(regsyncctl completion bash)\"")
    completion.add_argument("shell", choices=("bash", "zsh"))


def _completion(ctx: Ctx) -> int:
    from .completion import script

    ctx.print(script(build(), ctx.args.shell))
    return EXIT_OK


def _add_globals(parser: argparse.ArgumentParser, *, late: bool) -> None:
    def default(value: object) -> object:
        return argparse.SUPPRESS if late else value

    options = parser.add_argument_group("global options") if late else parser
    options.add_argument("--server", metavar="ADDR", default=default(None),
                        help=f"daemon address, host:port or unix:PATH "
                             f"(default ${SERVER_ENV} or {DEFAULT_SERVER})")
    options.add_argument("--token", default=default(None),
                        help=f"API token (prefer --token-file or ${TOKEN_ENV}: "
                             "arguments are visible to other users)")
    options.add_argument("--token-file", metavar="FILE", default=default(None),
                        help="file holding the API token")
    options.add_argument("--tls", action="store_true", default=default(False),
                        help="the daemon serves TLS")
    options.add_argument("-o", "--output", choices=("table", "json"), default=default("table"),
                        help="output format (default table)")
    options.add_argument("--timeout", type=float, metavar="SECONDS", default=default(120.0),
                        help="deadline for each request (default 120)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regsync")
    except PackageNotFoundError:
        return "unknown"
