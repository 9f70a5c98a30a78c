"""Login: the daemon's API token, checked against the daemon, kept in this tab only."""

from __future__ import annotations

from nicegui import ui

from ..api import Api
from ..client import DaemonError
from ..components.frame import frame
from ..paths import local_path
from ..session import Panel, remember_token


def _safe_next(target: str) -> str:
    """Only paths of this panel: never an open redirect to another site."""
    return local_path(target) or "/"


async def _daemon_checks_tokens(panel: Panel) -> bool:
    """Whether the daemon refuses a call without a token. A panel beyond loopback signs nobody
    in otherwise: any "token" would do, and the login would be a door painted on a wall."""
    try:
        await Api(panel.client, None).stats()
    except DaemonError as error:
        return error.needs_login
    return False


async def build(panel: Panel, next_path: str = "/") -> None:
    await ui.context.client.connected()
    target = _safe_next(next_path)
    with frame("Sign in"):
        ui.label("regsyncd requires an API token (the one it was started with).")
        token = ui.input("API token", password=True, password_toggle_button=True).classes(
            "min-w-96").mark("token")
        message = ui.label("").classes("text-negative").mark("login-message")

        async def sign_in() -> None:
            value = (token.value or "").strip()
            if not value:
                message.set_text("Enter the token.")
                return
            if panel.settings.exposed and not await _daemon_checks_tokens(panel):
                message.set_text("regsyncd accepts calls without a token, so this panel (served "
                                 "beyond loopback) signs nobody in: start regsyncd with "
                                 "--token-file.")
                return
            try:
                await Api(panel.client, value).stats()
            except DaemonError as error:
                message.set_text("The daemon rejected this token." if error.needs_login
                                 else error.message)
                return
            remember_token(value)
            ui.navigate.to(target)

        token.on("keydown.enter", sign_in)
        ui.button("Sign in", on_click=sign_in).mark("sign-in")
