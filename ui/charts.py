"""ECharts options for the panel's trends, and the live throughput of a running execution. Pure.

Builders take the API's messages and return plain option dicts (what `ui.echart` renders), so
what a chart shows is tested without a browser; pages only place them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from regsync.common.units import size
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from . import format as fmt

MIB = 1024 * 1024
HISTORY = 30  # executions in a task's chart
#: statuses stacked in the daily chart: (field of DayTrend, legend, colour)
DAILY_STATUSES = (("succeeded", "succeeded", "#21ba45"), ("failed", "failed", "#c10015"),
                  ("stopped", "stopped", "#f2c037"), ("interrupted", "interrupted", "#9e9e9e"))


def _axis_day(date: str) -> str:
    return date[5:]  # "2026-03-02" -> "03-02"


def daily_executions(days: Sequence[pb.DayTrend]) -> dict[str, object]:
    """Stacked bars: executions that ended each day, by status."""
    return {
        "tooltip": {"trigger": "axis"},
        "animation": False,
        "legend": {"top": 0, "data": [label for _, label, _ in DAILY_STATUSES]},
        "grid": {"left": 40, "right": 20, "top": 50, "bottom": 30},
        "xAxis": {"type": "category", "data": [_axis_day(d.date) for d in days]},
        "yAxis": {"type": "value", "minInterval": 1, "name": "executions"},
        "series": [
            {"name": label, "type": "bar", "stack": "status", "color": colour,
             "data": [int(getattr(d, name)) for d in days]}
            for name, label, colour in DAILY_STATUSES
        ],
    }


def daily_bytes(days: Sequence[pb.DayTrend]) -> dict[str, object]:
    """Bars: MiB copied each day (by executions that ended that day)."""
    return {
        "tooltip": {"trigger": "axis"},
        "animation": False,
        "grid": {"left": 50, "right": 20, "top": 50, "bottom": 30},
        "xAxis": {"type": "category", "data": [_axis_day(d.date) for d in days]},
        "yAxis": {"type": "value", "name": "MiB copied"},
        "series": [{"name": "MiB copied", "type": "bar", "color": "#1976d2",
                    "data": [round(d.bytes_copied / MIB, 2) for d in days]}],
    }


def task_history(executions: Sequence[pb.Execution]) -> dict[str, object]:
    """The task's last HISTORY ended executions, oldest first: duration bars, MiB line."""
    ended = sorted((e for e in executions if e.status in fmt.FINISHED), key=lambda e: e.id)
    ended = ended[-HISTORY:]
    return {
        "tooltip": {"trigger": "axis"},
        "animation": False,
        "legend": {"top": 0, "data": ["duration (s)", "MiB copied"]},
        "grid": {"left": 50, "right": 50, "top": 50, "bottom": 30},
        "xAxis": {"type": "category", "data": [f"#{e.id}" for e in ended]},
        "yAxis": [{"type": "value", "name": "seconds"}, {"type": "value", "name": "MiB"}],
        "series": [
            {"name": "duration (s)", "type": "bar", "color": "#1976d2",
             "data": [round(_seconds(e), 2) for e in ended]},
            {"name": "MiB copied", "type": "line", "yAxisIndex": 1, "color": "#21ba45",
             "data": [round(e.counters.bytes_copied / MIB, 2) for e in ended]},
        ],
    }


def _seconds(execution: pb.Execution) -> float:
    start, end = fmt.started_at(execution), fmt.finished_at(execution)
    return (end - start).total_seconds() if start and end else 0.0


@dataclass
class Throughput:
    """Bytes per second of a running execution: over the last `window` seconds of samples
    (what it does now) and since its start (what it did on average)."""

    window: float = 5.0
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, when: float, copied: int) -> None:
        if self._samples and copied < self._samples[-1][1]:
            self._samples.clear()  # another execution's counters: start over
        self._samples.append((when, copied))
        while len(self._samples) > 2 and when - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def current(self) -> float | None:
        """None until two samples at least 0.2 s apart exist."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 - t0 >= 0.2 else None


def rate(bytes_per_second: float | None) -> str:
    return "-" if bytes_per_second is None else f"{size(int(bytes_per_second))}/s"
