"""The command tree's building blocks: the parser class, its usage error, leaves and groups.

Below both `parser` (which assembles the tree) and `commands/*` (which add their areas to it),
so neither imports the other's module.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn, TypeAlias

from .context import Ctx

Handler = Callable[[Ctx], int]
# the object `add_subparsers` returns
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(Exception):
    """argparse's complaint, raised instead of exiting so `main` can return an exit code."""

    def __init__(self, usage: str, message: str) -> None:
        super().__init__(message)
        self.usage = usage
        self.message = message


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(self.format_usage(), message)


def leaf(
    commands: Commands, name: str, handler: Handler, common: argparse.ArgumentParser,
    help: str,
) -> argparse.ArgumentParser:
    """A subcommand that runs `handler`."""
    sub: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=help, parents=[common]
    )
    sub.set_defaults(handler=handler)
    return sub


def group(commands: Commands, name: str, help: str) -> Commands:
    """A subcommand with subcommands of its own (`registries list`)."""
    sub = commands.add_parser(name, help=help, description=help)
    actions: Commands = sub.add_subparsers(dest="action", required=True, metavar="ACTION",
                                           parser_class=Parser)
    return actions
