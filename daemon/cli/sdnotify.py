"""systemd's sd_notify protocol in a few lines: READY, STOPPING and WATCHDOG over a datagram.

No dependency and no effect unless systemd set NOTIFY_SOCKET (Type=notify in the unit).
"""

from __future__ import annotations

import os
import socket


def notify(state: str, *, env: dict[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1"); False when not under systemd or the send failed."""
    address = (env if env is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Half of WATCHDOG_USEC in seconds (ping twice per period), or None when not asked for."""
    usec = (env if env is not None else os.environ).get("WATCHDOG_USEC", "")
    try:
        return int(usec) / 2_000_000 if usec else None
    except ValueError:
        return None
