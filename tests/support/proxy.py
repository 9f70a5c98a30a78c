"""A counting, fault-injecting HTTP proxy in front of a real registry.

The registry's own access log tells what reached it; this proxy additionally lets a test change
what comes back (a 503 with Retry-After, a corrupted blob, a dropped connection) while the real
registry still does the real work. Bodies stream both ways (memory stays at one chunk), so it
also sits in front of multi-GB benchmark copies.

The client's Host header is forwarded unchanged, so the registry builds upload Locations that
point back through the proxy; absolute Locations naming the upstream are rewritten too (belt and
braces, e.g. for relative-URL registries behind other proxies).

    with CountingProxy(registry, fault=fail_times(Fault.http_status(503, retry_after=1), 2,
                                                  "GET", r"/manifests/")) as proxy:
        ... point the client at proxy.url ...
        assert proxy.count("HEAD", r"/manifests/") == 1
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit

CHUNK = 1024 * 1024
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade",
})


class Upstream(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """A request as it arrived, before any fault: what a fault hook decides on."""

    index: int
    method: str
    path: str
    query: str
    headers: Mapping[str, str] = field(hash=False, compare=False, repr=False)  # has secrets


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do instead of a plain forward. `status` answers without contacting the registry;
    `corrupt_body` forwards but flips the first byte of the response body (same length: a
    registry lying about a digest); `disconnect` closes the connection without any answer."""

    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    corrupt_body: bool = False
    disconnect: bool = False

    @classmethod
    def http_status(
        cls, status: int, *, retry_after: int | None = None, body: bytes = b""
    ) -> Fault:
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        return cls(status=status, headers=headers, body=body)

    @classmethod
    def corrupt(cls) -> Fault:
        return cls(corrupt_body=True)


FaultHook = Callable[[ProxyRequest], Fault | None]


def no_fault(request: ProxyRequest) -> Fault | None:
    """The default hook: forward everything unchanged."""
    return None


def fail_times(fault: Fault, times: int, method: str, path_regex: str) -> FaultHook:
    """A hook injecting `fault` into the first `times` requests matching method ("*" = any)
    and path regex, then forwarding normally (a registry that recovers)."""
    pattern = re.compile(path_regex)
    lock = threading.Lock()
    left = [times]

    def hook(request: ProxyRequest) -> Fault | None:
        if method not in ("*", request.method) or not pattern.search(request.path):
            return None
        with lock:
            if left[0] <= 0:
                return None
            left[0] -= 1
        return fault

    return hook


class CountingProxy:
    """Forwards every request to `upstream` (a URL or a RegistryServer, whose credentials it
    then exposes so push helpers can target the proxy); records and counts requests."""

    def __init__(self, upstream: Upstream | str, *, fault: FaultHook = no_fault) -> None:
        self.upstream_url = (upstream if isinstance(upstream, str) else upstream.url).rstrip("/")
        self.username = None if isinstance(upstream, str) else upstream.username
        self.password = None if isinstance(upstream, str) else upstream.password
        self.fault = fault
        self.requests: list[ProxyRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"CountingProxy({self.url!r} -> {self.upstream_url!r})"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, val: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        # a short poll interval: shutdown() waits for it, and tests stop servers often
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def set_fault(self, fault: FaultHook) -> None:
        """Swap the hook (e.g. start failing halfway through a test)."""
        self.fault = fault

    def count(self, method: str, path_regex: str) -> int:
        """Requests with this method ("*" = any) whose path (no query) matches (re.search)."""
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(
                1 for r in self.requests
                if method.upper() in ("*", r.method) and pattern.search(r.path)
            )

    def _record(self, method: str, target: str, headers: Mapping[str, str]) -> ProxyRequest:
        path, _, query = target.partition("?")
        with self._lock:
            request = ProxyRequest(len(self.requests), method, path, query, dict(headers))
            self.requests.append(request)
        return request


def _handler_for(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream_url)
    up_host, up_port = upstream.hostname or "127.0.0.1", upstream.port or 80

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            request = proxy._record(self.command, self.path, dict(self.headers.items()))
            fault = proxy.fault(request) or Fault()
            if fault.disconnect:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.status is not None:
                self._drain_body()
                self._answer(fault)
                return
            self._forward(corrupt=fault.corrupt_body)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        def _answer(self, fault: Fault) -> None:
            assert fault.status is not None
            self.send_response_only(fault.status)
            for name, value in fault.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(fault.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(fault.body)

        def _forward(self, *, corrupt: bool) -> None:
            conn = http.client.HTTPConnection(up_host, up_port, timeout=300)
            try:
                conn.putrequest(self.command, self.path, skip_host=True,
                                skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        conn.putheader(name, value)
                chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
                if chunked:
                    conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                for piece in self._body_pieces(chunked):
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                if chunked:
                    conn.send(b"0\r\n\r\n")
                self._relay(conn.getresponse(), corrupt=corrupt)
            finally:
                conn.close()

        def _relay(self, response: http.client.HTTPResponse, *, corrupt: bool) -> None:
            self.send_response_only(response.status, response.reason)
            length = response.getheader("Content-Length")
            for name, value in response.getheaders():
                if name.lower() in _HOP_BY_HOP:
                    continue
                if name.lower() == "location" and value.startswith(proxy.upstream_url):
                    value = proxy.url + value[len(proxy.upstream_url):]
                self.send_header(name, value)
            has_body = self.command != "HEAD" and response.status not in (204, 304)
            stream_chunked = has_body and length is None
            if stream_chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if not has_body:
                return
            first = True
            while piece := response.read(CHUNK):
                if corrupt and first:
                    piece = bytes([piece[0] ^ 0xFF]) + piece[1:]
                first = False
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if stream_chunked else piece)
            if stream_chunked:
                self.wfile.write(b"0\r\n\r\n")

        def _body_pieces(self, chunked: bool) -> Iterator[bytes]:
            if chunked:
                yield from _read_chunked(self.rfile)
                return
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                piece = self.rfile.read(min(CHUNK, left))
                if not piece:
                    return
                left -= len(piece)
                yield piece

        def _drain_body(self) -> None:
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            for _ in self._body_pieces(chunked):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass  # requests are recorded in proxy.requests

    return Handler


def _read_chunked(rfile: BufferedIOBase) -> Iterator[bytes]:
    """Decode an HTTP/1.1 chunked request body (trailers ignored)."""
    while True:
        size = int(rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return
        yield rfile.read(size)
        rfile.readline()
