"""regsyncctl run in-process, as a user types it, against one daemon's address: its exit code
and what it printed (no environment of the test's, no terminal)."""

from __future__ import annotations

import io

import trio
from regsync.ctl.main import main as ctl


class Cli:
    def __init__(self, address: str) -> None:
        self.address = address

    async def __call__(self, *argv: str, stdin: str = "",
                       env: dict[str, str] | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await trio.to_thread.run_sync(lambda: ctl(
            ["--server", self.address, *argv], stdout=out, stderr=err,
            stdin=io.StringIO(stdin), environ=env or {}))
        return code, out.getvalue(), err.getvalue()

    async def both(self, *argv: str) -> tuple[int, str]:
        """The exit code and everything printed, stdout then stderr."""
        code, out, err = await self(*argv)
        return code, out + err
