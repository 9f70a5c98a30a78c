"""Which webhook hears what, when a task counts as stale, and how long to wait between tries.

Pure: tested as tables. Events (`config.NOTIFICATION_EVENTS`):

    execution.succeeded   an execution ended SUCCEEDED
    execution.failed      an execution ended FAILED
    execution.stopped     an execution ended STOPPED (a user stopped it)
    task.stale            a scheduled, enabled task has not succeeded for over twice its period
                          (once per stale spell: it is told again only after a success)

An INTERRUPTED execution (daemon shutdown) is resumed at the next start: no event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..monitor.labels import schedule_period
from ..settings import NotificationSettings
from ..store.records import ExecutionStatus, TaskRecord

_EVENT_OF = {
    ExecutionStatus.SUCCEEDED: "execution.succeeded",
    ExecutionStatus.FAILED: "execution.failed",
    ExecutionStatus.STOPPED: "execution.stopped",
}


def event_for(status: ExecutionStatus) -> str | None:
    """The event an execution's end raises, or None (still active, interrupted)."""
    return _EVENT_OF.get(status)


def wants(hook: NotificationSettings, event: str, task: str) -> bool:
    return event in hook.events and (not hook.tasks or task in hook.tasks)


@dataclass(frozen=True, slots=True)
class Stale:
    task: str
    last_success: datetime | None
    period: timedelta


def stale_tasks(
    tasks: Iterable[TaskRecord], successes: Mapping[str, datetime],
    created: Mapping[str, datetime], now: datetime,
) -> list[Stale]:
    """Scheduled, enabled tasks whose last success (or, never succeeded, their creation) is
    more than twice their schedule period ago."""
    found: list[Stale] = []
    for task in tasks:
        cron = task.rule.cron_expression
        if not cron or not task.rule.enabled:
            continue
        period = schedule_period(cron, now)
        since = successes.get(task.name) or created.get(task.name)
        if since is not None and now - since > 2 * period:
            found.append(Stale(task.name, successes.get(task.name), period))
    return found


#: delays before the 2nd, 3rd... attempt of one delivery (seconds); then it is given up
BACKOFF = (1.0, 4.0, 15.0)


def backoff(attempt: int, *, schedule: tuple[float, ...] = BACKOFF) -> float | None:
    """Seconds to wait after failed attempt number `attempt` (1-based); None: give up."""
    return schedule[attempt - 1] if 1 <= attempt <= len(schedule) else None
