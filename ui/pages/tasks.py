"""Tasks: schedule, next run, last result; run now, stop, enable/disable, edit, delete."""

from __future__ import annotations

from nicegui import ui
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import format as fmt
from ..components.frame import confirm, empty, frame, grid_header, status_badge
from ..components.live import Live
from ..session import Panel, Session, open_session
from .executions import executions_url
from .wizard import edit_url

_DONE = {"run": "started", "stop": "stopping", "enable": "enabled", "disable": "disabled",
         "delete": "deleted"}


def _endpoint(endpoint: pb.Endpoint) -> str:
    return fmt.shown(f"{endpoint.registry}/{endpoint.repository}")


class TaskTable:
    def __init__(self, session: Session) -> None:
        self.session = session
        ui.button("New task", icon="add", on_click=lambda: ui.navigate.to("/tasks/new")).mark(
            "new-task")
        self.container = ui.column().classes("w-full")

    async def render(self) -> None:
        tasks = await self.session.attempt(self.session.api.list_tasks())
        self.container.clear()
        with self.container:
            if tasks is None:
                empty("Tasks are unavailable right now.")
            elif not tasks:
                empty("No tasks yet: add registries, then create a task.")
            else:
                self._grid(tasks)

    def _grid(self, tasks: list[pb.Task]) -> None:
        with ui.grid(columns="auto 1fr auto auto auto auto auto").classes(
                "w-full items-center gap-x-4 gap-y-2"):
            grid_header("Name", "Source -> target", "Schedule", "Next run", "Last result",
                        "Enabled", "")
            for task in tasks:
                self._row(task)

    def _row(self, task: pb.Task) -> None:
        spec = task.spec
        ui.link(fmt.shown(spec.name), executions_url(spec.name))
        ui.label(f"{_endpoint(spec.source)} -> {_endpoint(spec.target)}").classes("text-sm")
        ui.label(spec.cron_expression or "manual").classes("font-mono text-sm")
        ui.label(fmt.when(fmt.next_run(task)))
        last = task.last_execution
        if task.HasField("last_execution"):
            with ui.link(target=f"/executions/{last.id}"):
                status_badge(pb.EXECUTION_STATUS_RUNNING if task.running else last.status
                             ).mark(f"last-{spec.name}")
        else:
            ui.label("never run")
        ui.switch(value=spec.enabled, on_change=lambda e: self.act(
            "enable" if e.value else "disable", spec.name)).mark(f"enabled-{spec.name}")
        with ui.row().classes("gap-1"):
            self._actions(task)

    def _actions(self, task: pb.Task) -> None:
        name = task.spec.name
        if task.running:
            ui.button("Stop", on_click=lambda: self.act("stop", name)).props(
                "flat dense color=warning").mark(f"stop-{name}")
        else:
            ui.button("Run now", on_click=lambda: self.act("run", name)).props(
                "flat dense").mark(f"run-{name}")
        ui.button("Edit", on_click=lambda: ui.navigate.to(edit_url(name))).props(
            "flat dense").mark(f"edit-{name}")
        ui.button("Delete", on_click=lambda: confirm(
            f"Delete task {name} and its execution history?", lambda: self.act("delete", name)
        )).props("flat dense color=negative").mark(f"delete-{name}")

    async def act(self, action: str, name: str) -> None:
        if await self.session.attempt(self.session.api.task_action(action, name)) is not None:
            ui.notify(f"Task {name} {_DONE[action]}", type="positive")
        await self.render()


async def build(panel: Panel) -> None:
    session = await open_session(panel, "/tasks")
    if session is None:
        return
    with frame("Tasks", session):
        table = TaskTable(session)
    await table.render()
    Live(session, table.render)
