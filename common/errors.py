"""The clients' own error: their setup is wrong (a panel address, a host name, a port).

The panel raises it without importing the daemon; `regsyncd serve`, which runs the panel in its
process, reports it as its own `ConfigError`.
"""

from __future__ import annotations


class SetupError(Exception):
    """A client's options cannot work (e.g. a panel beyond loopback without a login)."""
