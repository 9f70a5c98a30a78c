"""Executions: a list filtered by task and status, with progress bars, live."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

from nicegui import ui
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import charts
from .. import format as fmt
from ..components.frame import empty, frame, grid_header, status_badge
from ..components.live import Live
from ..session import Panel, Session, open_session

PAGE_SIZE = 100


def execution_rows(executions: Sequence[pb.Execution], now: datetime) -> None:
    """A grid of executions; the id links to the detail page."""
    with ui.grid(columns="auto 1fr auto auto 2fr auto auto").classes(
            "w-full items-center gap-x-4 gap-y-2"):
        grid_header("#", "Task", "Trigger", "Status", "Progress", "Started", "Duration")
        for execution in executions:
            ui.link(f"#{execution.id}", f"/executions/{execution.id}").mark(
                f"execution-{execution.id}")
            ui.label(fmt.shown(execution.task))
            ui.label(fmt.trigger_label(execution.trigger))
            status_badge(execution.status)
            with ui.column().classes("gap-0"):
                ui.linear_progress(fmt.progress(execution.counters), show_value=False,
                                   color=fmt.status_color(execution.status))
                ui.label(fmt.tally(execution.counters)).classes("text-xs text-slate-500")
            ui.label(fmt.when(fmt.started_at(execution)))
            ui.label(fmt.duration(fmt.elapsed(execution, now)))


class ExecutionList:
    """The list and its filters; `render` reloads it."""

    def __init__(self, session: Session, task: str) -> None:
        self.session = session
        self.task = task
        self.statuses: list[int] = []
        self.container = ui.column().classes("w-full")

    async def render(self) -> None:
        found = await self.session.attempt(self.session.api.list_executions(
            task=self.task, statuses=self.statuses, limit=PAGE_SIZE))
        history = None
        if self.task:  # one task's page: its last executions as a chart, whatever the filter
            history = await self.session.attempt(self.session.api.list_executions(
                task=self.task, limit=charts.HISTORY + 5))
        self.container.clear()
        with self.container:
            if history:
                ui.label(f"Last {charts.HISTORY} executions of {self.task}").classes(
                    "text-slate-500")
                ui.echart(charts.task_history(history)).classes("w-full h-64").props(
                    "data-chart=chart-task-history").mark("chart-task-history")
            if found is None:
                empty("Executions are unavailable right now.")
            elif not found:
                empty("No execution matches." if self.task or self.statuses
                      else "No executions yet.")
            else:
                execution_rows(found, datetime.now(UTC))

    async def set_task(self, task: str | None) -> None:
        self.task = task or ""
        await self.render()

    async def set_statuses(self, statuses: list[int] | None) -> None:
        self.statuses = list(statuses or [])
        await self.render()


def executions_url(task: str) -> str:
    """The history filtered on `task`: names may hold any printable character (quoted here)."""
    return "/executions?" + urlencode({"task": task})


async def build(panel: Panel, task: str = "") -> None:
    session = await open_session(panel, executions_url(task) if task else "/executions")
    if session is None:
        return
    tasks = await session.attempt(session.api.list_tasks()) or []
    names = sorted({t.spec.name for t in tasks} | ({task} if task else set()))
    with frame("Executions", session):
        with ui.row().classes("gap-4 items-end"):
            task_filter = ui.select({"": "all tasks", **{n: n for n in names}}, value=task,
                                    label="Task").classes("min-w-48").mark("filter-task")
            status_filter = ui.select(fmt.status_choices(), multiple=True, value=[],
                                      label="Status").classes("min-w-48").mark("filter-status")
        listing = ExecutionList(session, task)
    task_filter.on_value_change(lambda e: listing.set_task(e.value))
    status_filter.on_value_change(lambda e: listing.set_statuses(e.value))
    await listing.render()
    Live(session, listing.render)
