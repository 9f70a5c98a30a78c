"""The boundary between httpx and regsync: foreign exceptions become our errors.

Like httpcore's `map_exceptions`, nothing above this module sees a raw httpx exception: a
timeout, a refused connection, a certificate or handshake failure, a broken stream each become a
`NetworkError` (or ConfigError / RemoteServerError) whose message says which request broke and
why, with the cause dropped so no foreign text (which might hold a URL) reaches logs through a
traceback chain. Error *answers* (a registry's non-2xx replies) are registry/answers.py's.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from ..base.errors import ConfigError, NetworkError, RegsyncError, RemoteServerError

_TEXT_LIMIT = 300


@contextmanager
def map_exceptions(
    *, registry: str, host: str, timeout: float, what: str = ""
) -> Iterator[None]:
    """Turn httpx exceptions into NetworkError (or ConfigError / RemoteServerError).

    `what` ("blob sha256:... in a/b") starts the message when given, so a user learns which
    request broke, not only which host. Causes are dropped (`from None`) after their useful part
    is put in the message, so no foreign text (which might hold a URL) reaches logs through a
    traceback chain.
    """
    try:
        yield
    except httpx.HTTPError as exc:
        error = _mapped(exc, registry=registry, host=host, timeout=timeout)
        if error is None:
            raise
        if what and not isinstance(error, ConfigError):
            error.args = (f"{what}: {error.args[0]}", *error.args[1:])
        raise error from None


def _mapped(
    exc: httpx.HTTPError, *, registry: str, host: str, timeout: float
) -> RegsyncError | None:
    if isinstance(exc, httpx.TimeoutException):
        return NetworkError(_timeout_text(exc, host, timeout), registry=registry)
    if isinstance(exc, httpx.ConnectError):
        return _connect_error(exc, registry, host)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConfigError(
            f"registry {registry!r}: URL scheme must be http:// or https://", registry=registry
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return RemoteServerError(
            f"{host} redirected too many times", registry=registry, temporary=False
        )
    if isinstance(exc, httpx.DecodingError):
        return RemoteServerError(
            f"{host} sent a body that cannot be decoded", registry=registry, temporary=True
        )
    if isinstance(exc, httpx.TransportError):
        # RemoteProtocolError, ReadError, WriteError, CloseError, ProxyError...
        reason = _reason(exc) or type(exc).__name__
        return NetworkError(f"connection to {host} broke: {reason}", registry=registry)
    return None


def _timeout_text(exc: httpx.TimeoutException, host: str, timeout: float) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connecting to {host} timed out after {min(timeout, 30.0):g}s"
    if isinstance(exc, httpx.PoolTimeout):
        return f"no free connection to {host}: timed out after {timeout:g}s"
    direction = "sending to" if isinstance(exc, httpx.WriteTimeout) else "receiving from"
    return f"{host} stalled: {direction} it timed out after {timeout:g}s without progress"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes/contexts, and members of exception groups along the way."""
    pending = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:_TEXT_LIMIT]


def _connect_error(exc: httpx.ConnectError, registry: str, host: str) -> NetworkError:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = getattr(cause, "verify_message", None) or _reason(cause)
            return NetworkError(
                f"TLS certificate of {host} not trusted: {reason} (set ca_file to the"
                " registry's CA bundle, or insecure: true to skip verification)",
                registry=registry,
                temporary=False,
            )
        if isinstance(cause, ssl.SSLError):
            return NetworkError(
                f"TLS handshake with {host} failed: {cause.reason or _reason(cause)} (if the"
                " registry speaks plain HTTP, use an http:// URL; see also insecure and ca_file)",
                registry=registry,
                temporary=False,
            )
        if isinstance(cause, socket.gaierror):
            return NetworkError(
                f"cannot connect to {host}: name does not resolve ({cause.strerror})",
                registry=registry,
            )
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == (
            errno.ECONNREFUSED
        ):
            return NetworkError(
                f"cannot connect to {host}: connection refused (is the registry running on that"
                " port?)",
                registry=registry,
            )
    return NetworkError(
        f"cannot connect to {host}: {_reason(exc) or 'connect failed'}", registry=registry
    )
