"""The HTTP/1.1 transport against scripted loopback servers: the cases a real registry will not
produce on demand (dropped keep-alive connections, early answers, stalls).

The happy path and TLS run against the real registry in every integration test.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trio
from regsync.daemon.registry import http11
from regsync.daemon.registry.http11 import Http11Transport

Handler = Callable[[trio.SocketStream, int], Awaitable[None]]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Server:
    """Accepts connections on loopback and runs `handler(stream, n)` for the n-th (from 0)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.accepted = 0
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._one, listeners)

    async def _one(self, stream: trio.SocketStream) -> None:
        n, self.accepted = self.accepted, self.accepted + 1
        async with stream:
            try:
                await self.handler(stream, n)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def read_head(stream: trio.SocketStream, buffer: bytearray) -> bytes:
    """One request's head (bodies are not sent by these tests unless read explicitly)."""
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some(65536)
        if not data:
            raise trio.BrokenResourceError
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head


async def answer_each(stream: trio.SocketStream, reply: bytes, times: int) -> None:
    buffer = bytearray()
    for _ in range(times):
        await read_head(stream, buffer)
        await stream.send_all(reply)


async def start(nursery: trio.Nursery, handler: Handler) -> Server:
    server = Server(handler)
    await nursery.start(server.serve)
    return server


def client(server: Server, *, connections: int = 4, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        transport=Http11Transport(ssl_context=None, max_connections=connections),
        timeout=timeout,
    )


async def test_keep_alive_serves_sequential_requests_on_one_connection(
    nursery: trio.Nursery,
) -> None:
    server = await start(nursery, lambda stream, n: answer_each(stream, OK, 3))
    async with client(server) as http:
        bodies = [(await http.get("/v2/")).content for _ in range(3)]
    assert bodies == [b"ok"] * 3
    assert server.accepted == 1


async def test_connection_close_is_honoured(nursery: trio.Nursery) -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    server = await start(nursery, lambda stream, n: answer_each(stream, reply, 1))
    async with client(server) as http:
        statuses = [(await http.get("/v2/")).status_code for _ in range(2)]
    assert statuses == [200, 200]
    assert server.accepted == 2


async def test_idle_connection_closed_by_the_server_is_not_reused(
    nursery: trio.Nursery,
) -> None:
    server = await start(nursery, lambda stream, n: answer_each(stream, OK, 1))  # then closes
    async with client(server) as http:
        assert (await http.get("/v2/")).content == b"ok"
        await trio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        assert (await http.get("/v2/")).content == b"ok"
    assert server.accepted == 2


async def read_then_hang_up(stream: trio.SocketStream, n: int) -> None:
    """The first connection answers one request, then closes on reading the next one."""
    buffer = bytearray()
    await read_head(stream, buffer)
    if n > 0:
        await stream.send_all(OK)
        return
    await stream.send_all(OK)
    await read_head(stream, buffer)  # a keep-alive race: dropped just as the request came


async def test_request_lost_on_a_reused_connection_is_sent_again(nursery: trio.Nursery) -> None:
    server = await start(nursery, read_then_hang_up)
    async with client(server) as http:
        assert (await http.get("/v2/a")).content == b"ok"
        assert (await http.head("/v2/b")).status_code == 200
    assert server.accepted == 2


async def test_a_streamed_body_is_never_sent_twice(nursery: trio.Nursery) -> None:
    server = await start(nursery, read_then_hang_up)

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 10

    async with client(server) as http:
        assert (await http.get("/v2/a")).content == b"ok"
        with pytest.raises(httpx.RemoteProtocolError, match="closed before an answer"):
            await http.post("/v2/b", content=body())
    assert server.accepted == 1


async def test_chunked_bodies_and_head_answers(nursery: trio.Nursery) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nDocker-Content-Digest: sha256:1\r\n\r\n"

    async def handler(stream: trio.SocketStream, n: int) -> None:
        buffer = bytearray()
        await read_head(stream, buffer)
        await stream.send_all(chunked)
        await read_head(stream, buffer)
        await stream.send_all(head)  # no body follows a HEAD answer, whatever its length says
        await read_head(stream, buffer)
        await stream.send_all(OK)

    server = await start(nursery, handler)
    async with client(server) as http:
        assert (await http.get("/a")).content == b"abcde"
        answer = await http.head("/b")
        assert answer.headers["docker-content-digest"] == "sha256:1"
        assert (await http.get("/c")).content == b"ok"
    assert server.accepted == 1


async def test_request_body_and_headers_reach_the_server(nursery: trio.Nursery) -> None:
    seen: list[bytes] = []

    async def handler(stream: trio.SocketStream, n: int) -> None:
        buffer = bytearray()
        seen.append(await read_head(stream, buffer))
        while len(buffer) < 5:
            buffer += await stream.receive_some(65536)
        seen.append(bytes(buffer))
        await stream.send_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")

    server = await start(nursery, handler)
    async with client(server) as http:
        answer = await http.put("/v2/x?digest=sha256:1", content=b"hello", headers={"A": "b"})
    assert answer.status_code == 201
    head = seen[0].decode()
    assert head.startswith("PUT /v2/x?digest=sha256:1 HTTP/1.1\r\n")
    assert "A: b" in head and "Content-Length: 5" in head
    assert seen[1] == b"hello"


async def test_a_body_closed_early_gives_back_its_connection_slot(nursery: trio.Nursery) -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n" + b"x" * 4_000_000

    async def handler(stream: trio.SocketStream, n: int) -> None:
        await answer_each(stream, big if n == 0 else OK, 1)

    server = await start(nursery, handler)
    async with client(server, connections=1) as http:
        with trio.fail_after(5):
            async with http.stream("GET", "/big") as response:
                async for _chunk in response.aiter_raw():
                    break  # the rest is not wanted: the connection must not be reused
            assert (await http.get("/next")).content == b"ok"
    assert server.accepted == 2


async def test_the_connection_limit_makes_requests_wait(nursery: trio.Nursery) -> None:
    release = trio.Event()
    order: list[str] = []

    async def handler(stream: trio.SocketStream, n: int) -> None:
        await answer_each(stream, OK, 2)

    server = await start(nursery, handler)
    async with client(server, connections=1) as http:

        async def holder() -> None:
            async with http.stream("GET", "/first") as response:
                order.append("first open")
                await release.wait()
                await response.aread()
            order.append("first done")

        async def waiter() -> None:
            await (await http.get("/second")).aread()
            order.append("second done")

        async with trio.open_nursery() as inner:
            inner.start_soon(holder)
            await trio.sleep(0.05)
            inner.start_soon(waiter)
            await trio.sleep(0.1)
            order.append("released")
            release.set()
    assert order == ["first open", "released", "first done", "second done"]
    assert server.accepted == 1


async def never_answer(stream: trio.SocketStream, n: int) -> None:
    await read_head(stream, bytearray())
    await trio.sleep_forever()


async def test_a_stalled_server_times_out(nursery: trio.Nursery) -> None:
    server = await start(nursery, never_answer)
    async with client(server, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/v2/")


async def test_a_cancelled_request_gives_back_its_slot(nursery: trio.Nursery) -> None:
    async def handler(stream: trio.SocketStream, n: int) -> None:
        if n == 0:
            await never_answer(stream, n)
        await answer_each(stream, OK, 1)

    server = await start(nursery, handler)
    async with client(server, connections=1) as http:
        with trio.move_on_after(0.1):
            await http.get("/stuck")
        with trio.fail_after(5):
            assert (await http.get("/v2/")).content == b"ok"


async def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = Http11Transport(ssl_context=None, max_connections=1)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/v2/")


async def test_a_garbled_answer_is_a_protocol_error(nursery: trio.Nursery) -> None:
    server = await start(nursery, lambda stream, n: answer_each(stream, b"SPAM\r\n\r\n", 1))
    async with client(server) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/v2/")


async def refuse_unread(stream: trio.SocketStream, n: int) -> None:
    """Answer at once, then close with the body unread: the client's writes fail (distribution
    stops reading a refused body and resets the connection)."""
    refusal = b"HTTP/1.1 413 Too Large\r\nContent-Length: 7\r\nConnection: close\r\n\r\ntoo big"
    await read_head(stream, bytearray())
    await stream.send_all(refusal)
    stream.socket.shutdown(socket.SHUT_WR)
    await trio.sleep(0.2)


async def chunks_of_a_megabyte() -> AsyncIterator[bytes]:
    for _ in range(64):
        yield b"x" * 1_000_000


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "one-piece"])
async def test_an_upload_refused_midway_returns_the_servers_answer(
    nursery: trio.Nursery, streamed: bool
) -> None:
    server = await start(nursery, refuse_unread)
    async with client(server) as http:
        body = chunks_of_a_megabyte() if streamed else b"x" * 64_000_000
        answer = await http.put("/v2/upload", content=body)
    assert (answer.status_code, answer.content) == (413, b"too big")
    assert server.accepted == 1


async def test_a_post_lost_on_a_reused_connection_is_not_sent_again(
    nursery: trio.Nursery,
) -> None:
    """Not idempotent: the server may have acted on it (an upload session started)."""
    posts: list[int] = []

    async def handler(stream: trio.SocketStream, n: int) -> None:
        buffer = bytearray()
        await read_head(stream, buffer)
        await stream.send_all(OK)
        await read_head(stream, buffer)
        posts.append(n)  # then the connection dies without an answer

    server = await start(nursery, handler)
    async with client(server) as http:
        await http.get("/v2/")
        with pytest.raises(httpx.RemoteProtocolError, match="closed before an answer"):
            await http.post("/v2/x/blobs/uploads/", content=b"")
    assert posts == [0]


async def test_idle_connections_count_toward_the_limit_and_expire(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http11, "KEEPALIVE_EXPIRY", 0.05)
    closed: list[int] = []

    async def handler(stream: trio.SocketStream, n: int) -> None:
        buffer = bytearray()
        await read_head(stream, buffer)
        await stream.send_all(OK)
        while await stream.receive_some(100):
            pass
        closed.append(n)

    servers = [await start(nursery, handler) for _ in range(3)]
    transport = Http11Transport(ssl_context=None, max_connections=2)
    async with httpx.AsyncClient(transport=transport) as http:
        for server in servers:  # three origins, one connection each: only two stay open
            assert (await http.get(server.url + "/v2/")).content == b"ok"
        assert sum(map(len, transport._idle.values())) == 2
        await trio.sleep(0.1)
        assert (await http.get(servers[0].url + "/v2/")).content == b"ok"
        await trio.sleep(0.05)
        assert sum(map(len, transport._idle.values())) == 1  # the expired ones were closed
        assert sorted(s.accepted for s in servers) == [1, 1, 2]
    await trio.sleep(0.05)
    assert len(closed) == 4  # closing the client closes the last one too


async def test_reading_on_after_closing_raises_and_frees_the_slot_once(
    nursery: trio.Nursery,
) -> None:
    server = await start(nursery, lambda stream, n: answer_each(stream, OK, 3))
    transport = Http11Transport(ssl_context=None, max_connections=1)
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as http:
        async with http.stream("GET", "/a") as response:
            with pytest.raises(httpx.StreamClosed):
                async for _chunk in response.aiter_raw():
                    await response.aclose()
        assert transport._slots.value == 1 and not any(transport._idle.values())
        assert (await http.get("/b")).content == b"ok"


async def test_bytes_after_an_answer_keep_its_connection_from_reuse(
    nursery: trio.Nursery,
) -> None:
    async def handler(stream: trio.SocketStream, n: int) -> None:
        buffer = bytearray()
        await read_head(stream, buffer)
        # a broken proxy: a body after a HEAD answer, in the same packet
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await read_head(stream, buffer)
        await stream.send_all(OK)

    server = await start(nursery, handler)
    async with client(server) as http:
        assert (await http.head("/a")).status_code == 200
        assert (await http.get("/b")).content == b"ok"
    assert server.accepted == 2


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http:///x"])
async def test_only_http_and_https_urls_with_a_host_are_sent(url: str) -> None:
    transport = Http11Transport(ssl_context=None, max_connections=1)
    async with httpx.AsyncClient(transport=transport, timeout=1) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get(url)


async def test_a_failing_request_body_is_not_blamed_on_this_connection(
    nursery: trio.Nursery,
) -> None:
    """An upload's body streams from another connection (the blob's source): its failure must
    surface as itself, not as this server closing before an answer."""
    server = await start(nursery, lambda stream, n: answer_each(stream, OK, 2))

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 10
        raise httpx.ReadError("the source went away")

    async with client(server) as http:
        assert (await http.get("/v2/")).content == b"ok"  # the next request reuses it
        with pytest.raises(httpx.ReadError, match="the source went away"):
            await http.put("/v2/upload", content=body())
        assert (await http.get("/v2/")).content == b"ok"  # its slot came back
    assert server.accepted == 2
