"""Fixtures for the panel: a fake daemon and NiceGUI's simulated user, on asyncio.

The rest of the suite runs in pytest-trio's trio_mode, which claims every async test. Panel tests
are marked `@pytest.mark.asyncio`; the hook below takes trio's mark off them again so
pytest-asyncio (strict mode) runs them on an asyncio loop, as NiceGUI needs. The `user` fixture
is ours, not nicegui.testing's plugin (whose plain async fixture trio_mode would also claim).

    fake_daemon          FakeDaemon on a free port, no token
    token_daemon         FakeDaemon that requires the token "s3cret-token"
    user / token_user    a simulated browser user of the panel pointed at that daemon
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fake_daemon import FakeDaemon
from nicegui import app, core, ui
from nicegui.functions.download import download
from nicegui.functions.navigate import Navigate
from nicegui.functions.notify import notify
from nicegui.storage import Storage
from nicegui.testing.general import nicegui_reset_globals, prepare_simulation
from nicegui.testing.user import User
from regsync.ui.app import register
from regsync.ui.session import PanelSettings

TOKEN = "s3cret-token"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("asyncio") is not None:
            item.own_markers[:] = [m for m in item.own_markers if m.name != "trio"]


@pytest.fixture(scope="session", autouse=True)
def _nicegui_storage() -> Iterator[None]:
    """NiceGUI's storage in a temporary directory, not .nicegui/ in the work tree."""
    path = Path(tempfile.mkdtemp(prefix="regsync-ui-storage-"))
    Storage.path = path
    app.storage = Storage()
    yield
    shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def simulate(settings: PanelSettings) -> AsyncIterator[User]:
    """The panel's pages in a fresh NiceGUI app, and a user browsing it (no HTTP server)."""
    with nicegui_reset_globals():
        os.environ["NICEGUI_USER_SIMULATION"] = "true"
        try:
            register(settings)
            prepare_simulation()
            ui.run(storage_secret="simulated secret")  # returns at once in a simulation
            async with core.app.router.lifespan_context(core.app):
                transport = httpx.ASGITransport(core.app)
                async with httpx.AsyncClient(transport=transport,
                                             base_url="http://test") as client:
                    yield User(client)
        finally:
            os.environ.pop("NICEGUI_USER_SIMULATION", None)
            ui.navigate = Navigate()
            ui.notify = notify
            ui.download = download


@pytest.fixture
def fake_daemon() -> Iterator[FakeDaemon]:
    daemon = FakeDaemon().start()
    yield daemon
    daemon.stop()


@pytest.fixture
def token_daemon() -> Iterator[FakeDaemon]:
    daemon = FakeDaemon(token=TOKEN).start()
    yield daemon
    daemon.stop()


def _fail_on_errors(caplog: pytest.LogCaptureFixture) -> None:
    """An exception inside a page handler is logged by NiceGUI, not raised: fail on it."""
    errors = [r for r in caplog.get_records("call") if r.levelname == "ERROR"]
    if errors:
        pytest.fail(f"unexpected ERROR logs: {[r.getMessage() for r in errors]}")


@pytest_asyncio.fixture
async def user(fake_daemon: FakeDaemon, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    async with simulate(PanelSettings(api_address=fake_daemon.address, timeout=5)) as u:
        yield u
    _fail_on_errors(caplog)


@pytest_asyncio.fixture
async def token_user(token_daemon: FakeDaemon,
                     caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    settings = PanelSettings(api_address=token_daemon.address, login_required=True, timeout=5)
    async with simulate(settings) as u:
        yield u
    _fail_on_errors(caplog)
