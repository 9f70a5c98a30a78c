"""A lean HTTP/1.1 keep-alive transport for httpx, on trio sockets and h11.

Why not httpcore's pool: a no-op re-sync is nothing but HEADs, and httpcore spent ~2 ms of CPU on
each (its pool re-scans every connection for every queued request), three times what the
request costs the registry. This transport keeps what a registry client needs and no more: a
LIFO of idle connections per origin, one limit on open connections, h11 for the protocol
(the parser httpcore itself uses), TLS through `trio.SSLStream`, and httpx's timeout extension
applied per operation. Proxies from the environment still go through httpx's own transports.

Failures surface as httpx exceptions, so `transport.map_exceptions` needs to know only one
vocabulary; the original error stays as `__cause__` (certificate problems are read from it).
"""

from __future__ import annotations

import select
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import NoReturn

import h11
import httpx
import trio

_READ_SIZE = 256 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: an idle connection older than this is closed rather than reused (httpcore's default too):
#: servers drop idle keep-alive connections on their own schedule
KEEPALIVE_EXPIRY = 5.0

_Origin = tuple[bytes, bytes, int]  # scheme, host, port


class _Connection:
    """One socket (TCP, maybe TLS) and the h11 state of the exchange on it."""

    __slots__ = ("h11", "idle_since", "origin", "received", "stream")

    def __init__(self, stream: trio.abc.Stream, origin: _Origin) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.origin = origin
        self.idle_since = 0.0
        self.received = 0  # bytes of the current answer

    def reusable(self, now: float) -> bool:
        """Fresh enough, and the server has not closed it (or sent anything) meanwhile."""
        return now - self.idle_since <= KEEPALIVE_EXPIRY and not self.stream_has_data()

    def stream_has_data(self) -> bool:
        """Bytes (or an EOF) wait to be read on the socket."""
        poller = select.poll()
        poller.register(_socket_of(self.stream).fileno(), select.POLLIN | select.POLLHUP)
        return bool(poller.poll(0))


class Http11Transport(httpx.AsyncBaseTransport):
    """Keep-alive connections for one registry client; at most `max_connections` open (idle
    ones included), each request waiting for a free one."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None, max_connections: int) -> None:
        self._ssl_context = ssl_context
        self._slots = trio.Semaphore(max_connections, max_value=max_connections)
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        if request.url.raw_scheme not in (b"http", b"https") or not request.url.raw_host:
            # e.g. a Location header naming another scheme: httpcore refuses it the same way
            raise httpx.UnsupportedProtocol(f"cannot send a request to {request.url}")
        origin = (request.url.raw_scheme, request.url.raw_host, _port(request.url))
        await self._slots.acquire()
        connection: _Connection | None = None
        try:
            connection = self._idle_connection(origin)
            if connection is not None:
                try:
                    head = await _exchange(connection, request, timeouts)
                except _Disconnected:
                    # the server closed the idle connection as we reused it, most likely before
                    # reading the request: send it again on a new connection, as Go's net/http
                    # does, if that is safe (idempotent, and its body can be replayed)
                    _drop(connection)
                    if request.method not in _IDEMPOTENT or not isinstance(
                        request.stream, httpx.ByteStream
                    ):
                        raise
                    connection = None
            if connection is None:
                self._make_room()
                connection = await self._connect(origin, timeouts)
                head = await _exchange(connection, request, timeouts)
        except BaseException:  # Cancelled too: no await here, or the slot would leak
            if connection is not None:
                _drop(connection)
            self._slots.release()
            raise
        return httpx.Response(
            head.status_code,
            headers=head.headers.raw_items(),
            stream=_ResponseBody(self, connection, timeouts),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                _drop(connection)

    def _idle_connection(self, origin: _Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            if connection.reusable(now):
                return connection
            _drop(connection)
        return None

    async def _connect(self, origin: _Origin, timeouts: dict[str, float | None]) -> _Connection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        with _mapped(httpx.ConnectError, httpx.ConnectTimeout, timeouts.get("connect")):
            tcp = await trio.open_tcp_stream(hostname, port)
            if scheme != b"https":
                return _Connection(tcp, origin)
            context = self._ssl_context or ssl.create_default_context()
            tls = trio.SSLStream(tcp, context, server_hostname=hostname, https_compatible=True)
            try:
                await tls.do_handshake()
            except BaseException:
                tcp.socket.close()
                raise
        return _Connection(tls, origin)

    def _make_room(self) -> None:
        """Before opening a connection: close idle ones that expired (of any origin), and the
        oldest idle ones while idle + in use would exceed the limit (idle ones hold no slot)."""
        now = time.monotonic()
        idle = sorted((c for cs in self._idle.values() for c in cs), key=lambda c: c.idle_since)
        # open = in use (this request included) + idle = (limit - free slots) + idle
        excess = len(idle) - self._slots.value
        for n, connection in enumerate(idle):
            if n < excess or now - connection.idle_since > KEEPALIVE_EXPIRY:
                self._idle[connection.origin].remove(connection)
                _drop(connection)

    def _release(self, connection: _Connection | None) -> None:
        """Give back the request's slot; a connection that finished cleanly goes idle."""
        self._slots.release()
        if connection is None:
            return
        if self._closed:
            _drop(connection)
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)


class _Disconnected(httpx.RemoteProtocolError):
    """The connection broke before any byte of the response arrived."""


# Failures of this module's own connection, told apart from whatever the caller's request body
# iterator raises (which may be an httpx error of another connection: the blob's source).
class _WriteFailed(httpx.WriteError):
    pass


class _ReadFailed(httpx.ReadError):
    pass


class _ProtocolFailed(httpx.RemoteProtocolError):
    pass


_FAILED = (_WriteFailed, _ReadFailed, _ProtocolFailed)


class _ResponseBody(httpx.AsyncByteStream):
    """The response's bytes, read as the caller iterates; closing early drops the connection."""

    def __init__(
        self,
        transport: Http11Transport,
        connection: _Connection,
        timeouts: dict[str, float | None],
    ) -> None:
        self._transport = transport
        self._connection: _Connection | None = connection
        self._timeouts = timeouts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        while True:
            event = await _next_event(connection, self._timeouts)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
                if self._connection is not connection:  # closed while the caller held a chunk
                    raise httpx.StreamClosed()
            elif isinstance(event, h11.EndOfMessage):
                self._finish(connection)
                return

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:  # the body was not read to its end
            _drop(connection)
            self._transport._release(None)

    def _finish(self, connection: _Connection) -> None:
        self._connection = None
        state = connection.h11
        # bytes beyond the answer's end (a server that sent a body with a HEAD answer) would be
        # read as the next answer: such a connection is not reused
        clean = not state.trailing_data[0]
        if state.our_state is h11.DONE and state.their_state is h11.DONE and clean:
            state.start_next_cycle()
            self._transport._release(connection)
        else:  # Connection: close, or not clean
            _drop(connection)
            self._transport._release(None)


async def _exchange(
    connection: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
) -> h11.Response:
    """Send the request (streaming its body) and read up to the response's head.

    Raises:
        _Disconnected: the connection broke before the first byte of the answer.
    """
    connection.received = 0
    try:
        await _send_request(connection, request, timeouts)
        while True:
            event = await _next_event(connection, timeouts)
            if isinstance(event, h11.Response):
                return event
            # an InformationalResponse (1xx) is skipped: the final answer follows
    except _FAILED as exc:
        if connection.received == 0:
            raise _Disconnected(f"connection closed before an answer: {exc}") from exc
        raise


async def _send_request(
    connection: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
) -> None:
    state = connection.h11
    head = _encode(
        state,
        h11.Request(
            method=request.method, target=request.url.raw_path, headers=request.headers.raw
        ),
    )
    body = request.stream
    if isinstance(body, httpx.ByteStream):  # the common case: one write for head and body
        payload = [head]
        async for chunk in body:
            payload.append(_encode(state, h11.Data(data=chunk)))
        payload.append(_encode(state, h11.EndOfMessage()))
        with _answered_early(connection):
            await _send(connection, b"".join(payload), timeouts)
        return
    await _send(connection, head, timeouts)
    with _answered_early(connection):
        async for chunk in body:  # type: ignore[union-attr]
            if chunk:
                await _send(connection, _encode(state, h11.Data(data=chunk)), timeouts)
        await _send(connection, _encode(state, h11.EndOfMessage()), timeouts)


@contextmanager
def _answered_early(connection: _Connection) -> Iterator[None]:
    """A server may answer before reading the whole body (a refused upload, a 401) and close:
    our writes then fail, but its answer says why, so it is read rather than lost."""
    try:
        yield
    except _WriteFailed:
        if not connection.stream_has_data():
            raise


def _encode(state: h11.Connection, event: h11.Event) -> bytes:
    try:
        return state.send(event) or b""
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from exc


async def _send(connection: _Connection, data: bytes, timeouts: dict[str, float | None]) -> None:
    with _mapped(_WriteFailed, httpx.WriteTimeout, timeouts.get("write")):
        await connection.stream.send_all(data)


async def _next_event(connection: _Connection, timeouts: dict[str, float | None]) -> h11.Event:
    state = connection.h11
    while True:
        with _mapped(_ProtocolFailed, None, None):
            event = state.next_event()
        if event is h11.NEED_DATA:
            with _mapped(_ReadFailed, httpx.ReadTimeout, timeouts.get("read")):
                data = await connection.stream.receive_some(_READ_SIZE)
            if not data and state.their_state is h11.SEND_RESPONSE:
                raise _ProtocolFailed("server disconnected without sending a response")
            connection.received += len(data)
            state.receive_data(data)  # type: ignore[arg-type]  # a bytearray from SSLStream
        elif event is h11.PAUSED:
            raise _ProtocolFailed("server sent data out of turn")
        else:
            return event  # type: ignore[return-value]


@contextmanager
def _mapped(
    error: type[httpx.TransportError],
    timeout_error: type[httpx.TimeoutException] | None,
    seconds: float | None,
) -> Iterator[None]:
    """Bound the block by `seconds` and raise httpx's exception for what went wrong.

    No cancel scope of our own when an enclosing deadline comes first anyway (the Session bounds
    each non-streaming call by the same timeout): on a HEAD, two or three scopes saved.
    """
    try:
        if seconds is None or trio.current_effective_deadline() <= trio.current_time() + seconds:
            yield
        else:
            with trio.fail_after(seconds):
                yield
    except trio.TooSlowError:
        assert timeout_error is not None
        _raise(timeout_error("timed out"), None)
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError) as exc:
        _raise(error(str(exc) or type(exc).__name__), exc)


def _raise(error: httpx.TransportError, cause: BaseException | None) -> NoReturn:
    # the cause keeps ssl errors reachable for transport._connect_error
    raise error from cause


def _drop(connection: _Connection) -> None:
    """Close without a goodbye (no TLS close_notify): for idle or broken connections."""
    _socket_of(connection.stream).close()


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType:
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    assert isinstance(stream, trio.SocketStream)
    return stream.socket


def _port(url: httpx.URL) -> int:
    if url.port is not None:
        return url.port
    return 443 if url.raw_scheme == b"https" else 80
