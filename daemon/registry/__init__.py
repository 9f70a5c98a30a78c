"""The Registry HTTP API V2 client: references, auth, transport (retries, rate limits, errors),
manifests and blobs. It knows nothing of rules or runs.

httpx builds and sends the requests; `http11` is the connection pool underneath (trio sockets
and h11), because a no-op re-sync is thousands of HEADs and httpcore's pool was their main cost.
"""

from __future__ import annotations

import sys
import types


def _skip_httpx_cli() -> None:
    """httpx imports its command-line tool (rich, pygments, click) whenever those are installed,
    which nicegui brings: ~100 ms of every `regsyncd once`, for a CLI regsync never runs. A
    no-op re-sync is judged by its start-up, so we stand in for that one module."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stub = types.ModuleType("httpx._main")

    def main() -> None:
        raise SystemExit("httpx's command line is not available inside regsync")

    stub.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stub


_skip_httpx_cli()
