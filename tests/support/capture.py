"""A server that stands in for an attacker's host: it records every request it receives and
answers each with a Basic challenge, the answer most likely to draw a password out of a client.

Tests point a registry (or a token realm) at it and then assert what it never received.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


@dataclass(frozen=True, slots=True)
class Captured:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class CapturingServer:
    """`url` answers 401 with `WWW-Authenticate: Basic` to everything; `requests` holds what came."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, captured: Captured) -> None:
        with self._lock:
            self.requests.append(captured)

    def authorizations(self) -> list[str]:
        """Every Authorization header received (none is the point, mostly)."""
        with self._lock:
            return [h for r in self.requests if (h := r.header("authorization")) is not None]

    def everything(self) -> str:
        """All that arrived, as one text to search for a secret (Basic credentials decoded)."""
        with self._lock:
            lines = [f"{r.method} {r.path} {r.headers}" for r in self.requests]
        for header in self.authorizations():
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "basic":
                lines.append(base64.b64decode(value + "==").decode("utf-8", "replace"))
        return "\n".join(lines)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(capture: CapturingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(min(length, 1 << 20))
            capture.record(Captured(self.command, self.path, tuple(self.headers.items())))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="attacker"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
