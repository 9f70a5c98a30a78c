"""`regsyncctl registries list|show|add|edit|rm|test`.

Passwords never come from the command line (other users see argv): `--password-stdin` reads
them from a pipe, or a terminal prompt asks without echo when a user name is given.
"""

from __future__ import annotations

import argparse
import getpass

from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import specs, views
from ..client import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CtlError
from ..context import Ctx
from ..tree import Commands, group, leaf


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    area = group(commands, "registries", "the registries regsync reads from and writes to")
    leaf(area, "list", _list, common, "list registries")
    leaf(area, "show", _show, common, "show one registry").add_argument("name")
    add = leaf(area, "add", _add, common, "add a registry")
    add.add_argument("name")
    add.add_argument("--url", required=True, help="https://host[:port] (http:// = plain HTTP)")
    _settings(add)
    edit = leaf(area, "edit", _edit, common,
                "change the given settings of a registry (the password is kept unless "
                "--password-stdin is given, or --url or --username change: then it is dropped)")
    edit.add_argument("name")
    edit.add_argument("--url", help="https://host[:port] (http:// = plain HTTP)")
    _settings(edit)
    leaf(area, "rm", _rm, common, "delete a registry no task uses").add_argument("name")
    leaf(area, "test", _test, common,
         "check that the daemon can reach the registry and log in").add_argument("name")


def _settings(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--username", help="user name (empty = anonymous)")
    sub.add_argument("--password-stdin", action="store_true",
                     help="read the password from stdin (taken literally: the daemon never "
                          "expands ${VAR} for a client); without it a terminal prompts when "
                          "--username is given")
    sub.add_argument("--insecure", action=argparse.BooleanOptionalAction, default=None,
                     help="skip TLS certificate verification")
    sub.add_argument("--ca-file", help="PEM CA bundle on the daemon's machine")
    sub.add_argument("--qps", type=specs.non_negative_float,
                     help="requests per second towards this registry (0 = unlimited)")


def _list(ctx: Ctx) -> int:
    d = ctx.daemon
    reply: pb.ListRegistriesResponse = d.call(d.registries.ListRegistries,
                                              pb.ListRegistriesRequest())
    ctx.emit(reply, views.registries_table(reply.registries))
    return EXIT_OK


def _show(ctx: Ctx) -> int:
    d = ctx.daemon
    registry: pb.Registry = d.call(d.registries.GetRegistry, pb.NameRequest(name=ctx.args.name))
    ctx.emit(registry, views.registry_detail(registry))
    return EXIT_OK


def _add(ctx: Ctx) -> int:
    password = read_password(ctx, username=ctx.args.username, prompt=True)
    spec = specs.new_registry(ctx.args, password)
    d = ctx.daemon
    registry: pb.Registry = d.call(d.registries.CreateRegistry, spec)
    ctx.emit(registry, f"registry {registry.name} added")
    return EXIT_OK


def _edit(ctx: Ctx) -> int:
    password = read_password(ctx, username=None, prompt=False)
    d = ctx.daemon
    current: pb.Registry = d.call(d.registries.GetRegistry, pb.NameRequest(name=ctx.args.name))
    registry: pb.Registry = d.call(d.registries.UpdateRegistry,
                                   specs.edited_registry(current, ctx.args, password))
    ctx.emit(registry, views.registry_updated(registry))
    return EXIT_OK


def _rm(ctx: Ctx) -> int:
    d = ctx.daemon
    reply: pb.DeleteResponse = d.call(d.registries.DeleteRegistry,
                                      pb.NameRequest(name=ctx.args.name))
    ctx.emit(reply, f"registry {ctx.args.name} deleted")
    return EXIT_OK


def _test(ctx: Ctx) -> int:
    d = ctx.daemon
    verdict: pb.TestRegistryResponse = d.call(d.registries.TestRegistry,
                                              pb.NameRequest(name=ctx.args.name))
    ctx.emit(verdict, views.registry_test(ctx.args.name, verdict))
    return EXIT_OK if verdict.ok else EXIT_FAILED


def read_password(ctx: Ctx, *, username: str | None, prompt: bool) -> str | None:
    """The password from stdin or a no-echo prompt; None = send none (keep / anonymous).

    Raises:
        CtlError: a user name without any way to read its password (EXIT_USAGE).
    """
    if ctx.args.password_stdin:
        return ctx.stdin.read().rstrip("\r\n")
    if not (prompt and username):
        return None
    if not ctx.stdin.isatty():
        raise CtlError(
            f"--username {username} needs a password: pipe it in with --password-stdin",
            EXIT_USAGE,
        )
    return getpass.getpass(f"Password for {username}: ")
