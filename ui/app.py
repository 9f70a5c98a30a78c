"""The panel's routes: one NiceGUI page per view, all sharing one `Panel`.

    /                      dashboard
    /registries            registries
    /tasks                 tasks;  /tasks/new, /tasks/edit?name=NAME: the wizard
    /executions            executions (?task=NAME);  /executions/{id}: one execution
    /notifications         webhooks and their last delivery
    /login                 the API token, when the daemon requires one
"""

from __future__ import annotations

from nicegui import Client, app, ui

from .pages import (
    dashboard,
    execution,
    executions,
    login,
    notifications,
    registries,
    tasks,
    wizard,
)
from .session import Panel, PanelSettings

TITLE = "regsync"


class _Current:
    """The panel the pages serve; replaced when a panel is started again in this process."""

    panel: Panel | None = None


def current() -> Panel:
    assert _Current.panel is not None, "register() first"
    return _Current.panel


def register(settings: PanelSettings) -> Panel:
    """Serve the pages for `settings` (added to NiceGUI's global app once); returns the shared
    state, whose gRPC channel closes with the app."""
    panel = Panel(settings)
    _Current.panel = panel
    app.on_shutdown(panel.client.close)
    if "/" not in Client.page_routes.values():
        _add_pages()
    return panel


def _add_pages() -> None:
    @ui.page("/")
    async def _dashboard() -> None:
        await dashboard.build(current())

    @ui.page("/login")
    async def _login(next: str = "/") -> None:  # the query parameter's name
        await login.build(current(), next)

    @ui.page("/registries")
    async def _registries() -> None:
        await registries.build(current())

    @ui.page("/tasks")
    async def _tasks() -> None:
        await tasks.build(current())

    @ui.page("/tasks/new")
    async def _new_task() -> None:
        await wizard.build(current())

    @ui.page("/tasks/edit")  # the name as a query parameter: task names may contain "/"
    async def _edit_task(name: str) -> None:
        await wizard.build(current(), name)

    @ui.page("/executions")
    async def _executions(task: str = "") -> None:
        await executions.build(current(), task)

    @ui.page("/notifications")
    async def _notifications() -> None:
        await notifications.build(current())

    @ui.page("/executions/{execution_id}")
    async def _execution(execution_id: int) -> None:
        await execution.build(current(), execution_id)
