"""The panel's execution page against the real daemon, its store written through the store's own
API (support/bigrun.py): a run of 100,000 tags read a page at a time, and names and messages a
hostile registry could have sent shown with their control characters escaped."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from conftest import simulate
from nicegui import ui
from nicegui.testing import User
from regsync.ui.session import PanelSettings
from support.bigrun import seed_big_execution, seed_hostile_execution
from support.registry import free_port

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")


def serve(tmp_path: Path, seed: Callable[[Path], int]) -> Iterator[tuple[str, int]]:
    """regsyncd serving a store `seed` wrote: (address, the id `seed` returned)."""
    db = tmp_path / "regsync.db"
    execution_id = seed(db)
    address = f"127.0.0.1:{free_port()}"
    with open(tmp_path / "daemon.log", "wb") as log:
        process = subprocess.Popen([REGSYNCD, "serve", "--db", str(db), "--listen", address,
                                    "--ui-port", "0"], stdout=log, stderr=log)
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        yield address, execution_id
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


@pytest.fixture
def big_daemon(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """One execution of 100,000 tags."""
    yield from serve(tmp_path, seed_big_execution)


@pytest.fixture
def hostile_daemon(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from serve(tmp_path, seed_hostile_execution)


@pytest_asyncio.fixture
async def hostile_user(hostile_daemon: tuple[str, int]) -> AsyncIterator[User]:
    async with simulate(PanelSettings(api_address=hostile_daemon[0], timeout=15)) as user:
        yield user


@pytest_asyncio.fixture
async def big_user(big_daemon: tuple[str, int]) -> AsyncIterator[User]:
    async with simulate(PanelSettings(api_address=big_daemon[0], timeout=15)) as user:
        yield user


@pytest.mark.asyncio
async def test_the_execution_page_pages_through_a_hundred_thousand_tags(
        big_user: User, big_daemon: tuple[str, int]) -> None:
    _, execution_id = big_daemon
    await big_user.open(f"/executions/{execution_id}")
    await big_user.should_see("tags 1-200 of 100000", retries=50)
    await big_user.should_see("1.199")
    await big_user.should_not_see("1.200")
    big_user.find("Next tags").click()
    await big_user.should_see("tags 201-400 of 100000", retries=50)
    await big_user.should_see("1.200")
    big_user.find("Next tags").click()
    await big_user.should_see("tags 401-600 of 100000", retries=50)
    big_user.find("Previous tags").click()
    await big_user.should_see("tags 201-400 of 100000", retries=50)
    await big_user.should_see("1.399")
    await big_user.should_see("line 99999: 1.99999 copied")  # the log's tail, not its start
    await big_user.should_not_see("line 99499: ")


@pytest.mark.asyncio
async def test_the_execution_page_shows_control_characters_escaped(
        hostile_user: User, hostile_daemon: tuple[str, int]) -> None:
    _, execution_id = hostile_daemon
    await hostile_user.open(f"/executions/{execution_id}")
    await hostile_user.should_see("1.0\\x1b[2J", retries=50)  # the tag
    await hostile_user.should_see("denied\\r\\nINFO forged line\\x1b]8;;")  # its reason
    await hostile_user.should_see("1 failed; first: denied\\r\\n")  # the execution's error
    await hostile_user.should_see("\\x1b[31mred\\x1b[0m\\x9b1m", retries=50)  # the log
    texts = [str(getattr(element, "text", "")) for element in hostile_user.find(
        content="").elements]
    log = hostile_user.find(kind=ui.log).elements.pop()
    texts += [str(getattr(line, "text", "")) for line in log.default_slot.children]
    assert any("\\x9b1m" in t for t in texts)  # the log's lines are among them
    raw = [t for t in texts if any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in t)]
    assert raw == []
