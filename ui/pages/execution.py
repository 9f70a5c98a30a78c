"""One execution: summary, per-tag results, the live log tail, and retry-failed."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from nicegui import ui
from regsync.common.units import size
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import charts
from .. import format as fmt
from ..components.frame import empty, frame, grid_header, status_badge
from ..components.live import Live
from ..session import Panel, Session, open_session
from .executions import executions_url

LOG_TAIL = 500  # lines kept in the browser
TAGS_PAGE = 200  # per-tag results on one page (a run may have 100,000)


def _summary(execution: pb.Execution, meter: charts.Throughput) -> None:
    now = datetime.now(UTC)
    with ui.row().classes("items-center gap-4"):
        ui.link(fmt.shown(execution.task), executions_url(execution.task)).classes("text-lg")
        status_badge(execution.status).mark("execution-status")
        ui.label(f"trigger: {fmt.trigger_label(execution.trigger)}")
        ui.label(f"started {fmt.when(fmt.started_at(execution))}")
        ui.label(f"duration {fmt.duration(fmt.elapsed(execution, now))}")
        if execution.parent_id:
            ui.link(f"continues #{execution.parent_id}", f"/executions/{execution.parent_id}")
        if execution.daemon:  # several daemons on one store: which one runs it
            ui.label(f"daemon {fmt.shown(execution.daemon)}").mark("execution-daemon")
    share = fmt.progress(execution.counters)
    with ui.row().classes("w-full items-center gap-4 flex-nowrap"):
        ui.linear_progress(share, show_value=False, color=fmt.status_color(execution.status),
                           size="12px").classes("grow").props(
                               f"data-progress={share:.3f}").mark("execution-progress")
        ui.label(f"{share:.0%}").mark("execution-percent")
    counters = execution.counters
    seconds = fmt.elapsed(execution, now) or 0.0
    average = counters.bytes_copied / seconds if seconds > 0 else None
    if execution.status == pb.EXECUTION_STATUS_RUNNING:
        meter.add(time.monotonic(), counters.bytes_copied)
        ui.label(f"throughput {charts.rate(meter.current())} now, "
                 f"{charts.rate(average)} average").mark("execution-throughput")
    elif execution.status in fmt.FINISHED:
        ui.label(f"throughput {charts.rate(average)} average").mark("execution-throughput")
    ui.label(f"{fmt.tally(counters)}; blobs: {counters.blobs_copied} copied, "
             f"{counters.blobs_mounted} mounted, {counters.blobs_skipped} present; "
             f"referrers: {counters.referrers_copied} copied; "
             f"{size(counters.bytes_copied)} copied").classes("text-sm")
    if execution.error:
        ui.label(fmt.shown(execution.error)).classes("text-negative")


def _scope(execution: pb.Execution, new: list[str], removed: list[str]) -> None:
    """A glob execution's repositories: how many, and which are new or gone since the last."""
    if not execution.HasField("repositories"):
        return
    r = execution.repositories
    ui.label(f"Repositories: {r.matched} matched, {r.added} new, {r.removed} removed").classes(
        "text-lg font-medium").mark("scope-summary")
    for label, names, count, color in (("New", new, r.added, "positive"),
                                       ("Removed", removed, r.removed, "negative")):
        if not names:
            continue
        more = f" (the first {len(names)} of {count})" if count > len(names) else ""
        ui.label(f"{label}{more}:").classes("text-sm")
        with ui.row().classes("gap-1").mark(f"scope-{label.lower()}"):
            for name in names:
                ui.chip(fmt.shown(name), color=color).props("dense outline")


def _tags(detail: pb.ExecutionDetail, first: int, new: set[str]) -> None:
    """One page of results; `first` is the position of its first result (0-based). A glob
    execution's are grouped by repository (in the order recorded within one), new ones marked."""
    ui.label("Tags").classes("text-lg font-medium")
    if not detail.tags:
        empty("No tag finished yet.")
        return
    shown = fmt.page_range(first, len(detail.tags), detail.total_tags)
    ui.label(shown).classes("text-sm").mark("tags-range")
    if not any(tag.repository for tag in detail.tags):
        with ui.grid(columns="auto auto 1fr").classes("w-full gap-x-4 gap-y-1"):
            grid_header("Tag", "Result", "Digest / reason")
            for tag in detail.tags:
                _tag_cells(tag)
        return
    with ui.grid(columns="auto auto auto 1fr").classes("w-full gap-x-4 gap-y-1").mark(
            "tags-by-repository"):
        grid_header("Repository", "Tag", "Result", "Digest / reason")
        previous = None
        for tag in sorted(detail.tags, key=lambda t: t.repository):
            with ui.row().classes("gap-1 items-center"):
                if tag.repository != previous:  # the group's first row names it
                    ui.label(fmt.shown(tag.repository or "-")).classes("font-medium")
                    if tag.repository in new:
                        ui.badge("new", color="positive").props("outline")
            previous = tag.repository
            _tag_cells(tag)


def _tag_cells(tag: ev.TagResult) -> None:
    ui.label(fmt.shown(tag.tag or "(repository)"))
    ui.badge(fmt.outcome_label(tag.outcome), color=fmt.outcome_color(tag.outcome))
    ui.label(fmt.shown(fmt.result_detail(tag))).classes("font-mono text-xs break-all")


class ExecutionView:
    """The page's parts; `render` reloads summary and tags, the log grows by itself."""

    def __init__(self, session: Session, execution_id: int) -> None:
        self.session = session
        self.id = execution_id
        self.detail = ui.column().classes("w-full gap-2")
        #: page tokens of the pages before this one, and this one's ("" is the first page)
        self.pages: list[str] = [""]
        with ui.row().classes("items-center"):
            self.previous = ui.button("Previous tags", on_click=self.previous_page)
            self.next = ui.button("Next tags", on_click=self.next_page)
        self.next_token = ""
        with ui.row():
            self.retry = ui.button("Retry failed tags", on_click=self.retry_failed)
            self.stop = ui.button("Stop", on_click=self.stop_run).props("color=warning")
        ui.label("Log").classes("text-lg font-medium")
        self.log = ui.log(max_lines=LOG_TAIL).classes("w-full h-80")
        self.task = ""
        self.meter = charts.Throughput()
        #: a glob execution's new and removed repositories (the first page carries them)
        self.new: list[str] = []
        self.removed: list[str] = []

    async def render(self) -> None:
        detail = await self.session.attempt(self.session.api.get_execution(
            self.id, page_size=TAGS_PAGE, page_token=self.pages[-1]))
        if detail is None:
            return
        self.next_token = detail.next_page_token
        self.previous.set_visibility(len(self.pages) > 1)
        self.next.set_visibility(bool(self.next_token))
        execution = detail.execution
        self.task = execution.task
        if len(self.pages) == 1:
            self.new, self.removed = list(detail.new_repositories), list(detail.removed_repositories)
        self.retry.set_visibility(execution.status in fmt.FINISHED
                                  and execution.counters.tags_failed > 0)
        self.stop.set_visibility(execution.status == pb.EXECUTION_STATUS_RUNNING)
        self.detail.clear()
        with self.detail:
            _summary(execution, self.meter)
            _scope(execution, self.new, self.removed)
            _tags(detail, (len(self.pages) - 1) * TAGS_PAGE, set(self.new))

    async def next_page(self) -> None:
        if self.next_token:
            self.pages.append(self.next_token)
            await self.render()

    async def previous_page(self) -> None:
        if len(self.pages) > 1:
            self.pages.pop()
            await self.render()

    async def load_log(self) -> None:
        """The last LOG_TAIL stored lines (a big run has 100,000 and more: never all of them)."""
        api = self.session.api
        count = await self.session.attempt(api.get_logs(self.id, limit=1))
        if count is None:
            return
        offset = max(count.total - LOG_TAIL, 0)
        tail = await self.session.attempt(api.get_logs(self.id, offset=offset, limit=LOG_TAIL))
        for line in tail.lines if tail is not None else ():
            self.add_line(line)

    def add_line(self, line: ev.LogLine) -> None:
        stamp = datetime.fromtimestamp(line.time).strftime("%H:%M:%S")
        self.log.push(f"{stamp} {fmt.shown(line.level):<7} {fmt.shown(line.message)}")

    def on_event(self, event: pb.WatchEvent) -> None:
        if event.WhichOneof("event") == "log":
            self.add_line(event.log)

    async def retry_failed(self) -> None:
        started = await self.session.attempt(self.session.api.retry_failed(self.id))
        if started is not None:
            ui.notify(f"Retrying the failed tags as execution #{started.id}", type="positive")
            ui.navigate.to(f"/executions/{started.id}")

    async def stop_run(self) -> None:
        if await self.session.attempt(self.session.api.task_action("stop", self.task)) is None:
            return
        ui.notify(f"Stopping {fmt.shown(self.task)}", type="info")
        await self.render()


async def build(panel: Panel, execution_id: int) -> None:
    session = await open_session(panel, f"/executions/{execution_id}")
    if session is None:
        return
    with frame(f"Execution #{execution_id}", session):
        view = ExecutionView(session, execution_id)
    await view.render()
    await view.load_log()
    Live(session, view.render, execution_id=execution_id, logs=True, on_event=view.on_event)
