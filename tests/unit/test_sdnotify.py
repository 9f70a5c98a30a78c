"""sd_notify over a real datagram socket, as systemd would listen."""

from __future__ import annotations

import socket
from pathlib import Path

from regsync.daemon.cli.sdnotify import notify, watchdog_interval


def test_notify_sends_the_state_to_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        assert notify("READY=1", env={"NOTIFY_SOCKET": path})
        assert listener.recv(100) == b"READY=1"


def test_notify_is_a_no_op_without_systemd(tmp_path: Path) -> None:
    assert not notify("READY=1", env={})
    assert not notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "absent.sock")})


def test_watchdog_pings_twice_per_period() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
