"""regsyncctl against the real daemon shows names and messages with control characters escaped:
a tag, a reason, an execution's error and a log line that a hostile registry could have put in
the store (written here through the store's own API), and the daemon's own error messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from regsync.daemon.cli.serve import Daemon, ServeOptions
from support.bigrun import seed_hostile_execution
from support.ctlrun import Cli

pytestmark = pytest.mark.integration


def assert_escaped(text: str) -> None:
    assert not any(ord(c) < 0x20 and c != "\n" for c in text), repr(text)
    assert not any(0x7f <= ord(c) <= 0x9f or c == "\u202e" for c in text), repr(text)
    assert not any(line.startswith("INFO forged") for line in text.splitlines())


@pytest.fixture
async def cli(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[tuple[Cli, int]]:
    db = tmp_path / "regsync.db"
    execution_id = seed_hostile_execution(db)
    options = ServeOptions(db_path=str(db), listen="127.0.0.1:0", ui_port=None,
                           shutdown_grace=1.0)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    yield Cli(daemon.address), execution_id
    await daemon.shutdown()


async def test_executions_show_and_logs_escape_what_registries_sent(
    cli: tuple[Cli, int],
) -> None:
    run, id = cli
    code, out, err = await run("executions", "show", str(id))
    assert code == 0, err
    assert_escaped(out)
    assert "1.0\\x1b[2J" in out and "denied\\r\\nINFO forged line\\x1b]8;;" in out
    code, out, err = await run("logs", str(id))
    assert code == 0, err
    assert_escaped(out)
    assert "listing src/a: \\x1b[31mred\\x1b[0m\\x9b1m" in out
    code, out, err = await run("executions", "list")
    assert code == 0 and "hostile" in out
    assert_escaped(out)


async def test_daemon_messages_are_escaped_too(cli: tuple[Cli, int]) -> None:
    run, _ = cli
    code, _, err = await run("tasks", "show", "x\x1b[2J\rforged")
    assert code == 1
    assert_escaped(err)
    assert "\\x1b[2J" in err
