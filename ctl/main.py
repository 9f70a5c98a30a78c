"""`regsyncctl`: parse, run one command handler, turn every expected failure into one line and
an exit code (see `regsyncctl --help`). A traceback here is a bug in regsyncctl, never a user
error: gRPC statuses, unreadable files, bad flags and Ctrl-C are all handled.

`main(argv, stdout=, stderr=, stdin=)` runs in-process with injected streams, so tests (and the
end-to-end suite) drive the CLI exactly as a user would without a subprocess.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from typing import TextIO

from regsync.common.text import escape_controls

from .client import (
    DEFAULT_SERVER,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    SERVER_ENV,
    CtlError,
    Secret,
    Target,
    resolve_token,
)
from .context import Ctx
from .parser import UsageError, build


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    env = os.environ if environ is None else environ
    token: Secret | None = None
    try:
        args = _parse(sys.argv[1:] if argv is None else argv, out, err)
        if isinstance(args, int):
            return args
        token = resolve_token(args.token, args.token_file, env)
        args.token = None  # from here on the token lives only in the Secret
        ctx = Ctx(args, target=_target(args, token, env), out=out, err=err,
                  stdin=stdin or sys.stdin, environ=env)
        try:
            code: int = args.handler(ctx)
            return code
        finally:
            ctx.close()
    except CtlError as exc:
        # several lines by design (a list of config problems), but no other control character
        shown = escape_controls(_redact(exc.message, token), keep_newlines=True)
        print(f"regsyncctl: {shown}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        _finish_line(out)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout(out)
        return 1


def _parse(argv: Sequence[str], out: TextIO, err: TextIO) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code of --help (0) or a usage error."""
    parser = build()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            return parser.parse_args(argv)
    except UsageError as exc:
        err.write(exc.usage)
        print(f"regsyncctl: error: {exc.message}", file=err)
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def _target(args: argparse.Namespace, token: Secret | None, env: Mapping[str, str]) -> Target:
    if not args.timeout > 0:
        raise CtlError("--timeout must be a positive number of seconds", EXIT_USAGE)
    return Target(
        address=args.server or env.get(SERVER_ENV) or DEFAULT_SERVER,
        token=token,
        tls=args.tls,
        ca_file=args.server_ca_file,
        timeout=args.timeout,
    )


def _redact(message: str, token: Secret | None) -> str:
    """A daemon message might echo what it was sent; the token must not reach the terminal."""
    return message.replace(token.value, "***") if token is not None else message


def _finish_line(out: TextIO) -> None:
    """After Ctrl-C, end a half-drawn progress line so the shell prompt starts clean."""
    try:
        if out.isatty():
            out.write("\n")
            out.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout(out: TextIO) -> None:
    """`regsyncctl ... | head`: the reader left; stop Python complaining at exit."""
    if out is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
