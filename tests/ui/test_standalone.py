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


def _panel(server: str, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "regsync.ui", "--server", server,
                             "--port", str(port)], stderr=subprocess.PIPE, text=True)


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
