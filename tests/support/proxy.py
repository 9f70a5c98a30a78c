"""A counting, fault-injecting HTTP proxy in front of a real registry.

The registry's own access log tells what reached it; this proxy additionally lets a test change
what comes back (a 503 with Retry-After, a corrupted blob, a dropped connection) while the real
registry still does the real work. Bodies stream both ways (memory stays at one chunk), so it
also sits in front of multi-GB benchmark copies.

Fault kinds: an answer instead of the registry's (`http_status`, `html_page`, `redirect`), a
dropped connection before any answer (`disconnect`), and faults on the registry's real answer:
`corrupt` (same length, wrong bytes), `reset_mid_body` (RST after part of the body),
`truncated` (FIN after part of the body), `stalled` (part of the body, then silence), `slow`
(a delay before forwarding). `RandomFaults` injects a seeded mix of them at a rate.

The client's Host header is forwarded unchanged, so the registry builds upload Locations that
point back through the proxy; absolute Locations naming the upstream are rewritten too (belt and
braces, e.g. for relative-URL registries behind other proxies).

    with CountingProxy(registry, fault=fail_times(Fault.http_status(503, retry_after=1), 2,
                                                  "GET", r"/manifests/")) as proxy:
        ... point the client at proxy.url ...
        assert proxy.count("HEAD", r"/manifests/") == 1

    chaos = RandomFaults(0.1, seed=7)          # 10 % of requests, mixed kinds, reproducible
    with CountingProxy(registry, fault=chaos) as proxy: ...
    chaos.injected                              # Counter: fault label -> times injected
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    time: float = field(default=0.0, compare=False)  # time.monotonic() at arrival


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do instead of a plain forward.

    `status` answers without contacting the registry; `disconnect` closes the connection without
    any answer (nothing forwarded). The others forward and spoil the registry's real answer:
    `corrupt_body` flips the first body byte (same length: a registry lying about a digest);
    `cut_after` sends the headers and at most that many body bytes (never the whole body), then
    ends the connection, with an RST when `reset` else a FIN (a truncated body); an answer
    without a body is dropped whole after the registry acted on the request (the answer to a
    committed upload lost on the way). `stall_after` sends that many body bytes then goes
    silent for `stall` seconds (or until the proxy stops). `delay` waits before anything.
    `label` names the kind in `RandomFaults.injected`.
    """

    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    corrupt_body: bool = False
    disconnect: bool = False
    cut_after: int | None = None
    reset: bool = False
    stall_after: int | None = None
    stall: float = 0.0
    delay: float = 0.0
    #: forward with this query string instead of the request's ("" drops it): e.g. a registry
    #: that ignores `mount=` and starts an upload whatever the blob
    query: str | None = None
    #: headers added to the registry's real answer (e.g. OCI-Chunk-Min-Length)
    add_headers: tuple[tuple[str, str], ...] = ()
    label: str = field(default="", compare=False)

    @classmethod
    def http_status(
        cls, status: int, *, retry_after: int | None = None, body: bytes = b""
    ) -> Fault:
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        return cls(status=status, headers=headers, body=body, label=str(status))

    @classmethod
    def corrupt(cls) -> Fault:
        return cls(corrupt_body=True, label="corrupt")

    @classmethod
    def html_page(cls, status: int = 502) -> Fault:
        """A front proxy's error page, not a registry answer."""
        body = (b"<!DOCTYPE html><html><head><title>%d Bad Gateway</title></head>"
                b"<body><h1>Bad Gateway</h1><p>nginx</p></body></html>" % status)
        return cls(status=status, headers=(("Content-Type", "text/html; charset=utf-8"),),
                   body=body, label="html")

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> Fault:
        return cls(status=status, headers=(("Location", location),), label="redirect")

    @classmethod
    def reset_mid_body(cls, after: int = 1024) -> Fault:
        return cls(cut_after=after, reset=True, label="reset")

    @classmethod
    def truncated(cls, after: int = 1024) -> Fault:
        return cls(cut_after=after, label="truncated")

    @classmethod
    def stalled(cls, seconds: float, after: int = 1024) -> Fault:
        return cls(stall_after=after, stall=seconds, label="stall")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(delay=seconds, label="slow")


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


#: the mix `RandomFaults` draws from by default: every temporary failure a registry path shows
DEFAULT_MIX: tuple[Fault, ...] = (
    Fault.http_status(500),
    Fault.http_status(502),
    Fault.http_status(503),
    Fault.http_status(429, retry_after=1),
    Fault.reset_mid_body(),
    Fault.truncated(),
    Fault(disconnect=True, label="disconnect"),
    Fault.slow(0.2),
)


class RandomFaults:
    """A fault hook injecting a fault, drawn from `kinds`, into a `rate` share of the requests
    that match `method` ("*" = any) and `path_regex`.

    Each decision comes from an RNG seeded with (seed, method, path, how many times this method
    and path were seen), so it does not depend on how threads interleave: a test that fails can
    be run again with the same faults. `injected` counts what was injected, by label, so a test
    can prove the faults really happened.
    """

    def __init__(
        self,
        rate: float,
        *,
        seed: int | str,
        kinds: Sequence[Fault] = DEFAULT_MIX,
        method: str = "*",
        path_regex: str = "",
    ) -> None:
        if not 0.0 <= rate <= 1.0 or not kinds:
            raise ValueError("rate must be in [0, 1] and kinds non-empty")
        self.rate = rate
        self.seed = seed
        self.kinds = tuple(kinds)
        self.method = method.upper()
        self.pattern = re.compile(path_regex)
        self.injected: Counter[str] = Counter()
        self._seen: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: ProxyRequest) -> Fault | None:
        if self.method not in ("*", request.method) or not self.pattern.search(request.path):
            return None
        with self._lock:
            key = (request.method, request.path)
            self._seen[key] += 1
            rng = random.Random(f"{self.seed}:{key[0]}:{key[1]}:{self._seen[key]}")
            if rng.random() >= self.rate:
                return None
            fault = rng.choice(self.kinds)
            self.injected[fault.label or "fault"] += 1
        return fault

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.injected.values())


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
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()  # ends stalls and delays early

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
        self.stopping.set()
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
        return len(self.requests_matching(method, path_regex))

    def requests_matching(self, method: str, path_regex: str) -> list[ProxyRequest]:
        """The recorded requests `count` would count, oldest first."""
        pattern = re.compile(path_regex)
        with self._lock:
            return [
                r for r in self.requests
                if method.upper() in ("*", r.method) and pattern.search(r.path)
            ]

    def _record(self, method: str, target: str, headers: Mapping[str, str]) -> ProxyRequest:
        path, _, query = target.partition("?")
        with self._lock:
            request = ProxyRequest(
                len(self.requests), method, path, query, dict(headers), time.monotonic()
            )
            self.requests.append(request)
        return request


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up on a faulty answer (as they should) are not errors worth a traceback."""

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _handler_for(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream_url)
    up_host, up_port = upstream.hostname or "127.0.0.1", upstream.port or 80

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            request = proxy._record(self.command, self.path, dict(self.headers.items()))
            fault = proxy.fault(request) or Fault()
            if fault.delay:
                proxy.stopping.wait(fault.delay)
            if fault.disconnect:
                self._hang_up(reset=False)
                return
            if fault.status is not None:
                self._drain_body()
                self._answer(fault)
                return
            self._forward(fault)

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

        def _hang_up(self, *, reset: bool) -> None:
            """End the connection now: an RST (linger 0) or a plain FIN."""
            self.close_connection = True
            if reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)

        def _forward(self, fault: Fault) -> None:
            conn = http.client.HTTPConnection(up_host, up_port, timeout=300)
            try:
                target = self.path
                if fault.query is not None:
                    target = target.partition("?")[0] + (f"?{fault.query}" if fault.query else "")
                conn.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        conn.putheader(name, value)
                chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
                if chunked:
                    conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                sent = 0
                for piece in self._body_pieces(chunked):
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    sent += len(piece)
                if not chunked and sent < int(self.headers.get("Content-Length") or 0):
                    # the client hung up mid-body: so does the proxy, as a connection would
                    self._hang_up(reset=False)
                    return
                if chunked:
                    conn.send(b"0\r\n\r\n")
                self._relay(conn.getresponse(), fault)
            finally:
                conn.close()

        def _relay(self, response: http.client.HTTPResponse, fault: Fault) -> None:
            length = response.getheader("Content-Length")
            has_body = self.command != "HEAD" and response.status not in (204, 304)
            size = int(length) if length is not None and length.isdigit() else None
            if fault.cut_after is not None and (not has_body or size == 0):
                self._hang_up(reset=fault.reset)  # the registry acted; its answer is lost
                return
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() in _HOP_BY_HOP:
                    continue
                if name.lower() == "location" and value.startswith(proxy.upstream_url):
                    value = proxy.url + value[len(proxy.upstream_url):]
                self.send_header(name, value)
            for name, value in fault.add_headers:
                self.send_header(name, value)
            stream_chunked = has_body and length is None
            if stream_chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if has_body:
                self._relay_body(response, fault, size, stream_chunked)

        def _relay_body(
            self, response: http.client.HTTPResponse, fault: Fault, size: int | None,
            stream_chunked: bool,
        ) -> None:
            cut = _cut_point(fault.cut_after, size)
            stall = _cut_point(fault.stall_after, size)
            sent = 0
            while piece := response.read(CHUNK):
                if fault.corrupt_body and sent == 0:
                    piece = bytes([piece[0] ^ 0xFF]) + piece[1:]
                for part in _split(piece, sent, (cut, stall)):
                    if sent == cut:
                        self._hang_up(reset=fault.reset)
                        return
                    if sent == stall:
                        proxy.stopping.wait(fault.stall)
                        stall = None
                    if part:
                        self.wfile.write(
                            b"%x\r\n%s\r\n" % (len(part), part) if stream_chunked else part
                        )
                        sent += len(part)
            if cut is not None:  # a body shorter than the cut: still never completed
                self._hang_up(reset=fault.reset)
                return
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


def _cut_point(after: int | None, size: int | None) -> int | None:
    """Where to cut or stall a body of `size` bytes: at `after`, but always strictly inside."""
    if after is None:
        return None
    return min(after, size // 2) if size else after


def _split(piece: bytes, offset: int, marks: tuple[int | None, ...]) -> Iterator[bytes]:
    """`piece` (starting at body `offset`) split at the marks that fall inside it; a mark at its
    very start yields an empty part first, so the caller sees `sent == mark` before writing."""
    cuts = sorted({m - offset for m in marks if m is not None and 0 <= m - offset < len(piece)})
    start = 0
    for cut in cuts:
        yield piece[start:cut]
        start = cut
    yield piece[start:]


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
