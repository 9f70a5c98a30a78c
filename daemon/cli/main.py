"""`regsyncd`: the command line. `once` and `check` run a YAML config without a server.

Exit codes: 0 every tag succeeded; 1 some tag or rule failed; 2 the command or config is wrong
(nothing was contacted); 130 interrupted. Only what a subcommand uses is imported, so a no-op
re-sync starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..base.errors import ConfigError, RegsyncError, first_regsync_error
from ..config import load_config
from ..settings import Config, SyncRule

if TYPE_CHECKING:
    from ..engine.platform_memory import PlatformMemory

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        config = load_config(args.config)
        rules = _select_rules(config, args.rule)
        if args.command == "once":
            return _once(config, rules, verbose=args.verbose, force_prune=args.force_prune)
        return _check(config, rules)
    except ConfigError as exc:
        print(f"regsyncd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BaseExceptionGroup as group:  # a component of `serve` failed to start, or ^C
        if group.subgroup(KeyboardInterrupt) is not None:  # trio raises it from a nursery
            return _interrupted()
        first = first_regsync_error(group)
        if first is None:
            raise
        print(f"regsyncd: {first}", file=sys.stderr)
        return EXIT_USAGE if isinstance(first, ConfigError) else EXIT_FAILED
    except KeyboardInterrupt:
        return _interrupted()


def _interrupted() -> int:
    print("regsyncd: interrupted; tags finished so far are in place", file=sys.stderr)
    return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regsyncd", description="Mirror container images between registries."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    once = commands.add_parser("once", help="sync every enabled rule (or the named ones), then exit")
    check = commands.add_parser("check", help="show what a sync would do (HEAD requests only)")
    for sub in (once, check):
        sub.add_argument("--config", "-c", required=True, help="YAML config file")
        sub.add_argument(
            "--rule", "-r", action="append", default=[], metavar="NAME",
            help="only this rule (repeatable; disabled rules may be named)",
        )
        sub.add_argument("--verbose", "-v", action="store_true", help="also log skipped tags")
    once.add_argument("--force-prune", action="store_true",
                      help="prune even past a rule's prune_max, this once")
    serve = commands.add_parser("serve", help="run the daemon: scheduler, gRPC API and panel")
    serve.add_argument("--config", "-c", help="YAML config applied into the store at start")
    serve.add_argument("--db", help="SQLite file (default: $STATE_DIRECTORY or XDG state dir) or "
                       "postgresql://USER@HOST[:PORT]/DATABASE")
    serve.add_argument("--listen", default="127.0.0.1:50051",
                       help="gRPC address, host:port or unix:PATH (default %(default)s)")
    serve.add_argument("--tls-cert", help="PEM certificate for the gRPC API")
    serve.add_argument("--tls-key", help="PEM private key for the gRPC API")
    serve.add_argument("--token-file",
                       help="file holding the API token clients must send (or $REGSYNC_API_TOKEN)")
    serve.add_argument("--insecure-plaintext-api", action="store_true",
                       help="allow the API beyond loopback without TLS (its token and passwords "
                            "cross the network readable; logged as a warning at every start)")
    serve.add_argument("--max-running", type=int, default=2,
                       help="executions that copy at the same time (default %(default)s)")
    serve.add_argument("--ui-port", type=int, default=8080,
                       help="web panel port on the API's host, 0 = no panel (default %(default)s)")
    serve.add_argument("--ui-host", default="127.0.0.1",
                       help="web panel address; it serves plain HTTP; beyond loopback it needs "
                            "an API token, the panel's login (default %(default)s)")
    serve.add_argument("--ui-allowed-host", action="append", default=[], metavar="NAME",
                       help="a Host name browsers reach the panel by (repeatable); loopback "
                            "names and a specific --ui-host are allowed already, any other "
                            "Host is refused (DNS rebinding)")
    serve.add_argument("--metrics-listen", metavar="ADDR",
                       help="serve Prometheus /metrics on PORT or HOST:PORT (a bare port is "
                            "loopback; default: not served)")
    serve.add_argument("--panel-url", metavar="URL",
                       help="the panel's address as webhook receivers should link to it "
                            "(default: the in-process panel's own)")
    serve.add_argument("--log-format", choices=("human", "json"), default="human",
                       help="log lines for people, or one JSON object a line with task and "
                            "execution id (journald, log shippers) (default %(default)s)")
    serve.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return parser


def _serve(args: argparse.Namespace) -> int:
    import logging
    import os

    import trio

    from ..runtime.logformat import configure
    from ..store.location import parse_location
    from .serve import ServeOptions, default_db_path, read_token_file, serve

    configure(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    token = os.environ.get("REGSYNC_API_TOKEN", "").strip() or None
    if args.token_file is not None:
        token = read_token_file(args.token_file)
    # the API, the store and the copy engine run in three threads that share the GIL: hand it
    # over every 1 ms (not 5) so a control call is not kept waiting behind a busy copy
    sys.setswitchinterval(0.001)
    db = args.db or default_db_path()
    if not parse_location(db).postgres:
        os.makedirs(os.path.dirname(os.path.abspath(db)), mode=0o700, exist_ok=True)
    options = ServeOptions(
        db_path=db, listen=args.listen, config_path=args.config, tls_cert=args.tls_cert,
        tls_key=args.tls_key, token=token, max_running=args.max_running,
        ui_port=args.ui_port or None, ui_host=args.ui_host,
        ui_allowed_hosts=tuple(args.ui_allowed_host),
        insecure_plaintext_api=args.insecure_plaintext_api, metrics_listen=args.metrics_listen,
        panel_url=args.panel_url,
    )
    trio.run(serve, options)
    return EXIT_OK


def _select_rules(config: Config, names: Sequence[str]) -> tuple[SyncRule, ...]:
    if names:
        return tuple(config.rule(name) for name in names)
    rules = config.enabled_rules()
    if not rules:
        raise ConfigError("no enabled rule to run: enable one, or name it with --rule")
    return rules


def _once(config: Config, rules: Sequence[SyncRule], *, verbose: bool, force_prune: bool) -> int:
    import trio

    from ..engine.run import sync
    from .console import LineSink, TerminalSink, summary

    sink = TerminalSink(verbose=verbose) if sys.stderr.isatty() else LineSink(verbose=verbose)
    platforms = _platform_memory(rules)
    try:
        report = trio.run(lambda: sync(rules, config.registries, config.global_, sink=sink,
                                       platforms=platforms, force_prune=force_prune))
    finally:
        platforms.save()
        if isinstance(sink, TerminalSink):
            sink.close()
    print(summary(report), file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def _check(config: Config, rules: Sequence[SyncRule]) -> int:
    import trio

    from ..engine.events import discard
    from ..engine.plan import Verb
    from ..engine.run import Run, open_ports, registries_for
    from .console import plan_table

    async def plan() -> bool:
        ok = True
        names = registries_for(rules)
        async with open_ports(config.registries, config.global_, names) as ports:
            run = Run(config.global_, config.registries, sink=discard, ports=ports,
                      platforms=_platform_memory(rules))
            for rule in rules:
                try:
                    selection, plans = await run.plan(rule)
                except RegsyncError as exc:
                    print(f"rule {rule.name}: cannot plan: {exc}")
                    ok = False
                    continue
                ok = ok and all(p.action is not Verb.FAIL for p in plans)
                try:
                    prune = await run.plan_prune(rule, selection, plans)
                except RegsyncError as exc:
                    print(f"rule {rule.name}: cannot plan the prune: {exc}")
                    ok, prune = False, None
                print(plan_table(rule.name, plans, selection.dropped, prune))
        return ok

    return EXIT_OK if trio.run(plan) else EXIT_FAILED


def _platform_memory(rules: Sequence[SyncRule]) -> PlatformMemory:
    """The remembered platforms, read only when a rule filters by platform (the file can reach
    a few MB; most configs never need it)."""
    from ..engine.platform_memory import PlatformMemory, default_path

    if any(rule.architectures or rule.platforms for rule in rules):
        return PlatformMemory.load(default_path())
    return PlatformMemory()


if __name__ == "__main__":
    sys.exit(main())
