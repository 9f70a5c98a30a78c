"""The frame every page shares (header, navigation, sign-out) and small widgets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from nicegui import ui

from .. import format as fmt
from ..session import Session, remember_token

NAV = (("Dashboard", "/"), ("Registries", "/registries"), ("Tasks", "/tasks"),
       ("Executions", "/executions"), ("Webhooks", "/notifications"))


@contextmanager
def frame(title: str, session: Session | None = None) -> Iterator[ui.column]:
    """Header with navigation, then the page's column (yielded, entered)."""
    ui.page_title(f"{title} - regsync")
    with ui.header().classes("items-center gap-4 bg-slate-800"):
        ui.label("regsync").classes("text-lg font-bold")
        for label, path in NAV:
            ui.link(label, path).classes("text-white no-underline").mark(f"nav-{label.lower()}")
        ui.space()
        if session is not None and session.api.token:
            ui.button("Sign out", on_click=lambda: _sign_out()).props("flat color=white")
    with ui.column().classes("w-full max-w-6xl mx-auto p-4 gap-4") as column:
        ui.label(title).classes("text-2xl font-medium")
        yield column


def _sign_out() -> None:
    remember_token(None)
    ui.navigate.to("/login")


def status_badge(status: int) -> ui.badge:
    return ui.badge(fmt.status_label(status), color=fmt.status_color(status))


def dismiss(dialog: ui.dialog) -> None:
    """Close and remove a one-off dialog: nothing it held (a typed password) stays around."""
    dialog.close()
    dialog.delete()


def confirm(question: str, action: Callable[[], Awaitable[None]], *,
            label: str = "Delete") -> None:
    """A dialog asking `question`; `action` runs only on confirmation."""
    with ui.dialog() as dialog, ui.card():
        ui.label(question)
        with ui.row().classes("justify-end w-full"):
            ui.button("Cancel", on_click=lambda: dismiss(dialog)).props("flat")

            async def go() -> None:
                dismiss(dialog)
                await action()

            ui.button(label, on_click=go).props("color=negative").mark("confirm")
    dialog.open()


def grid_header(*names: str) -> None:
    """Column titles of a grid-built table (real elements, so rows can hold buttons)."""
    for name in names:
        ui.label(name).classes("font-bold text-slate-600 border-b")


def empty(text: str) -> None:
    ui.label(text).classes("text-slate-500 italic")
