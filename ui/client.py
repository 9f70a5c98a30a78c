"""The panel's one connection to regsyncd: a grpc.aio channel, the token, and readable errors.

The panel never shows a gRPC status or a traceback: every failed call becomes a `DaemonError`
whose message a person can act on (`explain`, pure). The channel lives on the asyncio loop that
first used it (NiceGUI's); it is rebuilt when the daemon was unreachable, so a restarted daemon is
picked up at once instead of after grpc's reconnect backoff. The API token is passed per call
(each browser tab has its own) and only ever leaves as `authorization` metadata.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

DEFAULT_TIMEOUT = 15.0  # seconds per unary call; TestRegistry and PreviewTags contact registries
_MAX_DETAILS = 300

# Reconnect quickly after a daemon restart (grpc's default backoff grows to two minutes).
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 3000),
)

# Statuses whose details are the daemon's own explanation of what the user asked for.
_REFUSALS = frozenset({
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
})


class DaemonError(Exception):
    """A call the daemon refused or could not answer, explained in one line."""

    def __init__(self, message: str, *, code: str = "", needs_login: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.needs_login = needs_login


def one_line(details: str) -> str:
    """The first line of the daemon's details, capped: never a multi-line trace in a toast."""
    first = details.strip().splitlines()[0] if details.strip() else ""
    return first if len(first) <= _MAX_DETAILS else first[: _MAX_DETAILS - 1] + "…"


def explain(code: grpc.StatusCode, details: str, *, address: str, token_sent: bool,
            timeout: float = DEFAULT_TIMEOUT) -> DaemonError:
    """What a failed call means to the person in front of the panel."""
    text = one_line(details)
    where = f"regsyncd at {address}"
    name = code.name.lower() if isinstance(code, grpc.StatusCode) else "unknown"
    if code == grpc.StatusCode.UNAVAILABLE:
        message = f"Cannot reach {where}: is it running? The panel reconnects by itself."
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"{where} did not answer within {timeout:g} s."
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        message = (f"{where} rejected the API token: sign in again." if token_sent
                   else f"{where} requires an API token: sign in.")
        return DaemonError(message, code=name, needs_login=True)
    elif code == grpc.StatusCode.PERMISSION_DENIED:
        message = f"{where} denied the request: {text}"
    elif code in _REFUSALS:
        message = text or name.replace("_", " ")
    elif code == grpc.StatusCode.UNIMPLEMENTED:
        message = f"{where} does not support this request (is it older than the panel?)."
    elif code == grpc.StatusCode.CANCELLED:
        message = "The request was cancelled."
    else:
        message = f"{where} failed: {text or name}"
    return DaemonError(message, code=name)


@dataclass(frozen=True)
class Stubs:
    """The services on one channel."""

    registries: Any
    tasks: Any
    executions: Any
    control: Any
    trends: Any = None
    notifications: Any = None


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


class DaemonClient:
    """Calls regsyncd on the running asyncio loop; errors arrive as `DaemonError`."""

    def __init__(self, address: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self._channel: Any = None
        self._stubs: Stubs | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"DaemonClient({self.address!r})"

    def stubs(self) -> Stubs:
        """The stubs of a channel bound to the running loop (made on first use, or anew)."""
        loop = asyncio.get_running_loop()
        if self._stubs is None or self._loop is not loop:
            self._channel = grpc.aio.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
            self._loop = loop
            self._stubs = Stubs(
                registries=rpc.RegistryServiceStub(self._channel),
                tasks=rpc.TaskServiceStub(self._channel),
                executions=rpc.ExecutionServiceStub(self._channel),
                control=rpc.ControlServiceStub(self._channel),
                trends=rpc.TrendServiceStub(self._channel),
                notifications=rpc.NotificationServiceStub(self._channel),
            )
        return self._stubs

    async def call(self, pick: Callable[[Stubs], Any], request: Any, *,
                   token: str | None) -> Any:
        """One unary call, `pick` choosing the method: `lambda s: s.tasks.ListTasks`.

        Raises:
            DaemonError: any non-OK status, explained.
        """
        if self.closed:
            raise DaemonError("The panel is shutting down.", code="cancelled")
        stubs = self.stubs()
        try:
            return await pick(stubs)(request, timeout=self.timeout, metadata=_metadata(token))
        except grpc.aio.AioRpcError as exc:
            raise await self._failure(stubs, exc, token) from None

    async def watch(self, request: pb.WatchRequest, *,
                    token: str | None) -> AsyncIterator[pb.WatchEvent]:
        """Follow the Watch stream until it ends; the stream is cancelled when the caller stops.

        Raises:
            DaemonError: the stream failed (daemon gone, token refused...).
        """
        if self.closed:
            return
        stubs = self.stubs()
        stream = stubs.control.Watch(request, metadata=_metadata(token))
        try:
            async for event in stream:
                yield event
        except grpc.aio.AioRpcError as exc:
            raise await self._failure(stubs, exc, token) from None
        finally:
            stream.cancel()

    async def _failure(self, stubs: Stubs, exc: grpc.aio.AioRpcError,
                       token: str | None) -> DaemonError:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE and stubs is self._stubs:
            await self._drop_channel()
        return explain(code, exc.details() or "", address=self.address,
                       token_sent=token is not None, timeout=self.timeout)

    async def _drop_channel(self) -> None:
        channel, self._channel, self._stubs = self._channel, None, None
        if channel is not None:
            await channel.close()

    async def close(self) -> None:
        """Close the channel; later calls fail with a DaemonError and streams end."""
        self.closed = True
        await self._drop_channel()
