"""Cron arithmetic, pure: when a task fires next, and whether a run was missed while down.

All times are timezone-aware UTC datetimes; cron expressions are evaluated in UTC.
`values.cron.normalized` reads an expression as a task's `cron_expression` is read (the config's words for a
bad one), so the panel's preview (the PreviewSchedule RPC) shows what the scheduler will do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from croniter import croniter

from ..base.errors import ConfigError
from ..values.cron import normalized

PREVIEW_MAX = 50  # fire times one preview may ask for
PREVIEW_DEFAULT = 5


@dataclass(frozen=True, slots=True)
class SchedulePreview:
    """What a cron expression means to the scheduler: as stored, and its next fire times."""

    expression: str
    times: tuple[datetime, ...] = ()


def upcoming(cron: str, after: datetime, count: int) -> tuple[datetime, ...]:
    """The next `count` fire times after `after`, each found as the scheduler finds the next."""
    times: list[datetime] = []
    for _ in range(count):
        after = next_fire(cron, after)
        times.append(after)
    return tuple(times)


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


def preview(text: str, now: datetime, count: int) -> SchedulePreview:
    """`count` (0 = PREVIEW_DEFAULT) fire times of `text` after `now`; no schedule, none.

    Raises:
        ConfigError: naming `cron_expression` or `count`, as the API reports a bad field.
    """
    if not 0 <= count <= PREVIEW_MAX:
        raise ConfigError(f"count: {count} is not 1 to {PREVIEW_MAX} (0 = {PREVIEW_DEFAULT})")
    try:
        expression = normalized(text)
    except ConfigError as exc:
        raise ConfigError(f"cron_expression: {exc}") from None
    if not expression:
        return SchedulePreview("")
    return SchedulePreview(expression, upcoming(expression, now, count or PREVIEW_DEFAULT))
