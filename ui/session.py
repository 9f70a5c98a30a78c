"""One browser tab's view of the daemon: its token, its Api, and how failures reach the user.

The token lives in NiceGUI's tab storage: in the panel's memory, for that browser tab only, gone
when the tab closes or the panel restarts; never in a cookie, a file or a log line. Every daemon
call a page makes goes through `Session.attempt`, which turns a `DaemonError` into a notification
(or, when the daemon wants a token, into the login page) so a page never shows a stack trace.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

from nicegui import app, ui

from . import format as fmt
from .api import Api
from .client import DaemonClient, DaemonError

T = TypeVar("T")
TOKEN_KEY = "regsync-api-token"


@dataclass(frozen=True)
class PanelSettings:
    """How the panel reaches the daemon (loaded once at the edge, see server.py)."""

    api_address: str
    login_required: bool = False  # known up front when the daemon was started with a token
    # served beyond loopback: a sign-in must then prove the daemon really checks tokens
    exposed: bool = False
    timeout: float = 15.0


@dataclass
class Panel:
    """The process-wide state: settings and the one gRPC client all tabs share."""

    settings: PanelSettings
    client: DaemonClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = DaemonClient(self.settings.api_address, timeout=self.settings.timeout)


def login_url(path: str) -> str:
    return f"/login?next={quote(path, safe='/')}"


def go_login(here: str) -> None:
    """Send this tab to the login page, to come back to `here` afterwards."""
    ui.navigate.to(login_url(here))


def current_token() -> str | None:
    token = app.storage.tab.get(TOKEN_KEY)
    return token if isinstance(token, str) and token else None


def remember_token(token: str | None) -> None:
    if token:
        app.storage.tab[TOKEN_KEY] = token
    else:
        app.storage.tab.pop(TOKEN_KEY, None)


def notify_error(error: DaemonError) -> None:
    ui.notify(fmt.shown(error.message, keep_newlines=True), type="negative", multi_line=True,
              close_button=True)


@dataclass(frozen=True)
class Session:
    """What a page holds: the Api with this tab's token."""

    panel: Panel
    api: Api
    here: str = "/"

    async def attempt(self, call: Awaitable[T]) -> T | None:
        """The call's result, or None after telling the user why it failed."""
        try:
            return await call
        except DaemonError as error:
            if error.needs_login:
                go_login(self.here)
            else:
                notify_error(error)
            return None


async def open_session(panel: Panel, here: str) -> Session | None:
    """Wait for the tab's connection (tab storage needs it) and bind its token.

    Returns None, after sending the tab to the login page, when a token is required and the tab
    has none.
    """
    await ui.context.client.connected()
    token = current_token()
    if panel.settings.login_required and token is None:
        go_login(here)
        return None
    return Session(panel, Api(panel.client, token), here)
