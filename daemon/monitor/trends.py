"""Executions per day by status and bytes copied per day: the panel's trend charts. Pure.

A day is a UTC calendar day; an execution counts for the day it finished (a run still going
counts nowhere yet). Every day of the window is present, zeros included, oldest first, so a
chart's x axis is continuous.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ..store.records import ExecutionStatus

MAX_DAYS = 366


@dataclass(slots=True)
class Day:
    day: date
    counts: dict[ExecutionStatus, int] = field(default_factory=dict)
    bytes_copied: int = 0


def window_start(today: date, days: int) -> date:
    return today - timedelta(days=days - 1)


def per_day(
    ended: Iterable[tuple[datetime, ExecutionStatus, int]], *, days: int, today: date
) -> list[Day]:
    """`ended` holds (finished, status, bytes copied) of ended executions, any order; rows
    outside the `days` ending with `today` are ignored."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1-{MAX_DAYS}, not {days}")
    first = window_start(today, days)
    buckets = [Day(first + timedelta(days=n)) for n in range(days)]
    for finished, status, copied in ended:
        index = (finished.date() - first).days
        if 0 <= index < days and not status.active:
            bucket = buckets[index]
            bucket.counts[status] = bucket.counts.get(status, 0) + 1
            bucket.bytes_copied += max(copied, 0)
    return buckets
