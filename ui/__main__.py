"""`python -m regsync.ui --server ADDR --port N`: the panel as its own process."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial

import trio
from regsync.common.errors import SetupError

from .server import run_panel


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m regsync.ui",
                                     description="The regsync web panel, a client of regsyncd.")
    parser.add_argument("--server", default="127.0.0.1:50051",
                        help="regsyncd's gRPC address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on; the panel speaks plain HTTP (default %(default)s)")
    parser.add_argument("--login", action="store_true",
                        help="open on the login page (the daemon requires an API token); "
                             "required beyond loopback")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a Host name browsers reach the panel by (repeatable); loopback "
                             "names and a specific --host are allowed already")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(
                run_panel, args.server, args.port, login_required=args.login, host=args.host,
                allowed_hosts=tuple(args.allowed_host),
                login_hint="add --login (and run regsyncd with --token-file: the panel asks "
                           "each browser for that token), or keep --host on loopback"))
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse(argv)
    status = 0
    try:
        trio.run(serve, args)
    except* SetupError as group:  # start-up failures arrive through the nursery
        for exc in group.exceptions:
            print(f"regsync panel: {exc}", file=sys.stderr)
        status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
