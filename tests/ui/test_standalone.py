"""`python -m regsync.ui`: the panel as its own process, and its start-up failure."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from fake_daemon import FakeDaemon


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    fake = FakeDaemon().start()
    yield fake
    fake.stop()


def _panel(server: str, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "regsync.ui", "--server", server,
                             "--port", str(port), *extra], stderr=subprocess.PIPE, text=True)


@pytest.fixture
def panel(daemon: FakeDaemon) -> Iterator[int]:
    """A standalone panel on loopback that also answers to panel.example; yields its port."""
    port = _free_port()
    process = _panel(daemon.address, port, "--allowed-host", "panel.example")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, "never came up"
                time.sleep(0.1)
        yield port
    finally:
        process.kill()
        process.wait()


def _get(port: int, path: str = "/", **headers: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)


def test_the_panel_answers_only_its_own_host_names(panel: int) -> None:
    """DNS rebinding: it answered `Host: attacker.example` on loopback."""
    for host in (f"127.0.0.1:{panel}", f"localhost:{panel}", f"[::1]:{panel}",
                 f"panel.example:{panel}"):
        reply = _get(panel, Host=host)
        assert reply.status_code == 200 and "<title>regsync</title>" in reply.text, host
    for host in (f"attacker.example:{panel}", "attacker.example", f"127.0.0.2:{panel}",
                 f"localhost.attacker.example:{panel}"):
        reply = _get(panel, Host=host)
        assert reply.status_code == 400 and "regsync" not in reply.text, host
    static = _get(panel, "/_nicegui_ws/socket.io/?EIO=4&transport=polling",
                  Host="attacker.example")
    assert static.status_code == 400


POLLING = "/_nicegui_ws/socket.io/?EIO=4&transport=polling"


def test_its_socket_accepts_only_its_own_origin(panel: int) -> None:
    """The socket.io endpoint allowed any origin with credentials."""
    own = _get(panel, POLLING, Origin=f"http://127.0.0.1:{panel}")
    assert own.status_code == 200 and own.text.startswith("0{")  # engine.io's open packet
    assert _get(panel, POLLING).status_code == 200  # no Origin: not a browser page
    for origin in ("http://evil.example", f"http://evil.example:{panel}", "null",
                   f"http://localhost:{panel + 1}"):
        reply = _get(panel, POLLING, Origin=origin)
        assert reply.status_code == 403, origin
        assert "access-control-allow-origin" not in reply.headers
    assert _websocket_status(panel, f"http://127.0.0.1:{panel}") == 101
    assert _websocket_status(panel, "http://evil.example") == 403
    assert _websocket_status(panel, f"http://127.0.0.1:{panel}", host="evil.example") != 101


def _websocket_status(port: int, origin: str, host: str | None = None) -> int:
    """The status of a websocket handshake on the socket.io endpoint, sent by hand."""
    request = (f"GET /_nicegui_ws/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
               f"Host: {host or f'127.0.0.1:{port}'}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(1024)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def test_beyond_loopback_without_a_login_it_refuses_to_start_saying_how(
        daemon: FakeDaemon) -> None:
    """`--host 0.0.0.0` served the whole panel with no login."""
    panel = _panel(daemon.address, _free_port(), "--host", "0.0.0.0")
    try:
        _, err = panel.communicate(timeout=30)
    finally:
        panel.kill()
        panel.wait()
    assert panel.returncode == 2
    assert "web panel on 0.0.0.0: beyond loopback it needs a login" in err
    assert "--login" in err and "--token-file" in err and "Traceback" not in err


def test_standalone_panel_serves_and_stops_on_sigterm(daemon: FakeDaemon) -> None:
    port = _free_port()
    panel = _panel(daemon.address, port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                assert panel.poll() is None and time.monotonic() < deadline, "panel never came up"
                time.sleep(0.1)
        assert reply.status_code == 200 and "<title>regsync</title>" in reply.text
        panel.send_signal(signal.SIGTERM)
        assert panel.wait(15) == 0
    finally:
        panel.kill()
        panel.wait()


def test_port_in_use_is_a_one_line_error(daemon: FakeDaemon) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        panel = _panel(daemon.address, taken.getsockname()[1])
        _, err = panel.communicate(timeout=30)
    assert panel.returncode == 2
    assert "web panel: cannot listen on 127.0.0.1:" in err and "Traceback" not in err
