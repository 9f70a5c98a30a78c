"""Dashboard: totals as cards and the latest executions, kept current by the Watch stream."""

from __future__ import annotations

from datetime import UTC, datetime

from nicegui import ui
from regsync.common.units import size
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import charts
from ..client import DaemonError
from ..components.frame import empty, frame
from ..components.live import Live
from ..session import Panel, Session, open_session
from .executions import execution_rows

LATEST = 10
TREND_DAYS = 30


def _cards(stats: pb.Stats) -> None:
    cards = (
        ("Tasks", stats.tasks_total, f"{stats.tasks_enabled} enabled"),
        ("Running", stats.running, ""),
        ("Succeeded today", stats.succeeded_today, f"{stats.succeeded_total} all time"),
        ("Failed today", stats.failed_today, f"{stats.failed_total} all time"),
        ("Copied today", size(stats.bytes_copied_today),
         f"{stats.executions_total} executions all time"),
    )
    with ui.row().classes("w-full gap-4"):
        for title, value, note in cards:
            with ui.card().classes("min-w-40").mark(f"card-{title.lower().replace(' ', '-')}"):
                ui.label(title).classes("text-slate-500")
                ui.label(str(value)).classes("text-3xl font-bold")
                ui.label(note).classes("text-xs text-slate-500")


def _trends(days: list[pb.DayTrend] | None) -> None:
    """Executions per day by status and bytes per day, TREND_DAYS days."""
    if days is None:
        empty("Trends are unavailable from this daemon.")
        return
    with ui.row().classes("w-full gap-4 flex-nowrap"):
        for title, options, mark in (
            (f"Executions per day ({TREND_DAYS} days)", charts.daily_executions(days),
             "chart-executions-per-day"),
            (f"Copied per day ({TREND_DAYS} days)", charts.daily_bytes(days),
             "chart-bytes-per-day"),
        ):
            with ui.card().classes("w-1/2"):
                ui.label(title).classes("text-slate-500")
                ui.echart(options).classes("w-full h-64").props(f"data-chart={mark}").mark(mark)


async def _daily(session: Session) -> list[pb.DayTrend] | None:
    """The trends, or None without a word: an older daemon has no TrendService."""
    try:
        return await session.api.daily_trends(TREND_DAYS)
    except DaemonError:
        return None


async def _render(session: Session, container: ui.column) -> None:
    stats = await session.attempt(session.api.stats())
    latest = await session.attempt(session.api.list_executions(limit=LATEST))
    days = await _daily(session)
    container.clear()
    with container:
        if stats is not None:
            _cards(stats)
        _trends(days)
        ui.label("Latest executions").classes("text-lg font-medium")
        if latest is None:
            empty("Executions are unavailable right now.")
        elif not latest:
            empty("No executions yet: create a task and run it.")
        else:
            execution_rows(latest, datetime.now(UTC))


async def build(panel: Panel) -> None:
    session = await open_session(panel, "/")
    if session is None:
        return
    with frame("Dashboard", session):
        container = ui.column().classes("w-full gap-4")
    await _render(session, container)
    Live(session, lambda: _render(session, container))
