"""The panel's execution page over a run of 100,000 tags: served by the real daemon (its store
written through the store's own API, support/bigrun.py), read a page at a time."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from conftest import simulate
from nicegui.testing import User
from regsync.ui.session import PanelSettings
from support.bigrun import seed_big_execution
from support.registry import free_port

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")


@pytest.fixture
def big_daemon(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """regsyncd serving a store that holds one execution of 100,000 tags: (address, its id)."""
    db = tmp_path / "regsync.db"
    execution_id = seed_big_execution(db)
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
