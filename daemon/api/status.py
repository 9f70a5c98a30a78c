"""The daemon's errors as gRPC status codes: the one place the API decides what a failure means.

    ConfigError                         INVALID_ARGUMENT     the message names the field
    UnknownItemError                    NOT_FOUND
    DuplicateItemError                  ALREADY_EXISTS
    ConflictError                       FAILED_PRECONDITION  e.g. run while running
    RateLimitError (429, Hub quota)     RESOURCE_EXHAUSTED   retrying later may work
    StoreError (disk full, read-only,   RESOURCE_EXHAUSTED   the daemon's host must free space
      PostgreSQL unreachable)                                (or bring the server back)
    other RegsyncError (auth, network,  FAILED_PRECONDITION  a registry refused or is unreachable:
      remote)                                                fix it, then retry
    PortalClosed                        UNAVAILABLE          the daemon is shutting down
    anything else                       INTERNAL             a generic message; details in the log

A registry's AuthError is FAILED_PRECONDITION, never UNAUTHENTICATED: that code means *this API's*
token was refused, and a client must be able to tell the two apart. Likewise a registry's
NetworkError is never UNAVAILABLE, which clients read as "regsyncd is down". Messages of
RegsyncError are written to be shown (they never hold credentials); any other exception's text
might, so it only goes to the daemon's log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio

from ..base.errors import (
    ConfigError,
    ConflictError,
    DuplicateItemError,
    RateLimitError,
    RegsyncError,
    StoreError,
    UnknownItemError,
)
from .bridge import PortalClosed

log = logging.getLogger(__name__)

INTERNAL_MESSAGE = "internal error in regsyncd (the daemon's log has the details)"

_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownItemError, grpc.StatusCode.NOT_FOUND),
    (DuplicateItemError, grpc.StatusCode.ALREADY_EXISTS),
    (ConflictError, grpc.StatusCode.FAILED_PRECONDITION),
    (PortalClosed, grpc.StatusCode.UNAVAILABLE),
)


def status_for(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and the message a client may see for `exc` (pure)."""
    code = _code_for(exc)
    message = INTERNAL_MESSAGE if code is grpc.StatusCode.INTERNAL else _capped(str(exc))
    return code, message


def _code_for(exc: Exception) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    if isinstance(exc, RateLimitError | StoreError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, RegsyncError):
        # a registry's trouble, not the daemon's: UNAVAILABLE would read as "regsyncd is down"
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INTERNAL


MAX_DETAILS = 4000  # gRPC carries the message in a header: past ~16 KiB the client gets nothing


def _capped(message: str) -> str:
    """At most MAX_DETAILS characters, cut at a line break: a long list of problems still
    arrives (its start), with a count of what was left out."""
    if len(message) <= MAX_DETAILS:
        return message
    cut = message[:MAX_DETAILS]
    if "\n" in cut:
        cut = cut[: cut.rfind("\n")]
    return f"{cut}\n... ({len(message) - len(cut)} more characters not shown)"


@asynccontextmanager
async def reported_as_status(context: Any, method: str) -> AsyncIterator[None]:
    """Abort the RPC with the status for any error raised in the block.

    Cancellation passes through untouched (it is not an Exception), and so does an abort already
    under way.
    """
    try:
        yield
    except grpc.aio.AbortError:
        raise
    except Exception as exc:
        code, message = status_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("%s failed", method)
        else:
            log.info("%s: %s: %s", method, code.name, message)
        await context.abort(code, message)
