"""Talking to regsyncd: where it is, the API token, and what a failed call means to a user.

Every gRPC failure becomes one `CtlError` with a one-line message and an exit code, so `main`
never shows a traceback. The token lives in a `Secret` (its repr hides it) and only ever leaves
the process as the `authorization` metadata of a call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

# Exit codes (documented in `regsyncctl --help`).
EXIT_OK = 0
EXIT_FAILED = 1  # the daemon refused the request, or the run / check did not succeed
EXIT_UNREACHABLE = 2  # no daemon at the address
EXIT_AUTH = 3  # the daemon wants a (different) API token
EXIT_USAGE = 64  # the command line is wrong (sysexits EX_USAGE); nothing was sent
EXIT_INTERRUPTED = 130  # Ctrl-C

DEFAULT_SERVER = "127.0.0.1:50051"
TOKEN_ENV = "REGSYNC_API_TOKEN"
SERVER_ENV = "REGSYNC_SERVER"

# Statuses whose message is the daemon's own explanation of the user's mistake.
_REFUSALS = frozenset({
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
})


class CtlError(Exception):
    """A failure to report as one line on stderr, ending the command with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Secret:
    """A value that must never be printed: repr and str hide it."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True)
class Target:
    """Where the daemon is and how to talk to it."""

    address: str = DEFAULT_SERVER
    token: Secret | None = None
    tls: bool = False
    ca_file: str | None = None
    timeout: float = 120.0  # seconds, for each unary call


def resolve_token(
    token: str | None, token_file: str | None, environ: Mapping[str, str]
) -> Secret | None:
    """--token, else --token-file, else $REGSYNC_API_TOKEN, else none.

    Raises:
        CtlError: the token file cannot be read or is empty (EXIT_USAGE).
    """
    if token:
        return Secret(token)
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as handle:
                text = handle.read().strip()
        except OSError as exc:
            raise CtlError(f"--token-file {token_file}: {exc.strerror}", EXIT_USAGE) from None
        if not text:
            raise CtlError(f"--token-file {token_file}: the file is empty", EXIT_USAGE)
        return Secret(text)
    from_env = environ.get(TOKEN_ENV, "").strip()
    return Secret(from_env) if from_env else None


def status_error(
    code: grpc.StatusCode,
    details: str,
    *,
    target: Target,
    reached: bool,
) -> CtlError:
    """What a failed call means to the user; `reached` says whether a connection to the daemon
    is up (then a deadline means a slow answer, not a missing daemon)."""
    where = f"regsyncd at {target.address}"
    if code == grpc.StatusCode.UNAVAILABLE:
        hint = "" if target.tls or target.ca_file else " (if it serves TLS, add --tls or --ca-file)"
        return CtlError(f"cannot reach {where}: {details}{hint}", EXIT_UNREACHABLE)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        if not reached:
            return CtlError(
                f"cannot reach {where}: no answer within {target.timeout:g} s", EXIT_UNREACHABLE
            )
        return CtlError(f"{where} did not answer within {target.timeout:g} s (see --timeout)")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        if target.token is None:
            hint = f"requires an API token: pass --token-file FILE or set ${TOKEN_ENV}"
        else:
            hint = f"rejected the API token (check --token, --token-file or ${TOKEN_ENV})"
        return CtlError(f"{where} {hint}", EXIT_AUTH)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return CtlError(f"{where} denied the request: {details}", EXIT_AUTH)
    if code in _REFUSALS:
        return CtlError(details or code.name.lower().replace("_", " "))
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return CtlError(f"{where} does not support this request (is it older than regsyncctl?)")
    return CtlError(f"{where} failed: {details or code.name}")


class Daemon:
    """Stubs for the four services, and calls that fail as `CtlError`s."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._channel = _open_channel(target)
        self.registries = rpc.RegistryServiceStub(self._channel)
        self.tasks = rpc.TaskServiceStub(self._channel)
        self.executions = rpc.ExecutionServiceStub(self._channel)
        self.control = rpc.ControlServiceStub(self._channel)
        self.notifications = rpc.NotificationServiceStub(self._channel)

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        """One unary call with the token and the deadline.

        Raises:
            CtlError: any non-OK status, explained.
        """
        try:
            reply = method(request, timeout=self.target.timeout, metadata=self.metadata())
        except grpc.RpcError as exc:
            raise self.error(exc) from None
        return reply

    def stream(self, method: Callable[..., Any], request: Any) -> Any:
        """Open a server stream; iterate it, `cancel()` it; errors arrive as grpc.RpcError."""
        return method(request, metadata=self.metadata())

    def error(self, exc: grpc.RpcError) -> CtlError:
        code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
        details = exc.details() if callable(getattr(exc, "details", None)) else ""
        reached = code == grpc.StatusCode.DEADLINE_EXCEEDED and _connected(self._channel)
        return status_error(code, details or "", target=self.target, reached=reached)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self.target.token is None:
            return ()
        return (("authorization", f"Bearer {self.target.token.value}"),)

    def close(self) -> None:
        self._channel.close()


def _connected(channel: Any) -> bool:
    try:
        grpc.channel_ready_future(channel).result(timeout=0.2)
    except grpc.FutureTimeoutError:
        return False
    return True


def _open_channel(target: Target) -> Any:
    if not (target.tls or target.ca_file):
        return grpc.insecure_channel(target.address)
    roots = None
    if target.ca_file:
        try:
            with open(target.ca_file, "rb") as handle:
                roots = handle.read()
        except OSError as exc:
            raise CtlError(f"--ca-file {target.ca_file}: {exc.strerror}", EXIT_USAGE) from None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.secure_channel(target.address, credentials)
