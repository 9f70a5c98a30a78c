"""Cron arithmetic, pure: when a task fires next, and whether a run was missed while down.

All times are timezone-aware UTC datetimes; cron expressions are evaluated in UTC.
"""

from __future__ import annotations

from datetime import datetime

from croniter import croniter


def next_fire(cron: str, after: datetime) -> datetime:
    """The first fire time strictly after `after`."""
    fire: datetime = croniter(cron, after).get_next(datetime)
    return fire


def previous_fire(cron: str, at: datetime) -> datetime:
    """The last fire time at or before `at`."""
    fire: datetime = croniter(cron, at).get_prev(datetime)
    return fire


def missed_fire(
    cron: str, *, last_run: datetime | None, since: datetime, now: datetime
) -> datetime | None:
    """The scheduled time that passed unserved while the daemon was down, if any.

    `last_run` is when the task last started (any trigger); `since` is when the task was created
    or the daemon's history begins. Only the newest missed time counts: one catch-up run, not
    one per missed tick.
    """
    prev = previous_fire(cron, now)
    start = max(last_run, since) if last_run is not None else since
    return prev if prev > start else None
