"""Cron ticks -> executions. One catch-up run for a time missed while the daemon was down.

The loop sleeps until the earliest next fire time or until `wake()` (a task was created, changed
or deleted). A tick while the task still runs is skipped and logged: a task never runs twice at
once. Wall-clock time comes from `now`, so tests can drive it from trio's virtual clock.

Each tick is claimed in the store with its execution (`task.last_tick`): a tick fired already,
by this daemon or by another on a shared store (a leader that lost its session and the one
that took over), is not fired again. On a shared store only the leader (cluster.py) runs this
loop, and it re-reads the tasks every `refresh` seconds: other daemons' APIs change them too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import trio

from ..base.errors import AlreadyFiredError, ConflictError, RegsyncError, StoreError
from ..settings import SyncRule
from ..store.db import Database
from ..store.records import ScheduledRun, TaskRecord, Trigger
from ..store.repo import Repo
from .cron import SchedulePreview, missed_fire, next_fire, preview
from .executor import Executor

log = logging.getLogger("regsync.scheduler")
STORE_RETRY = 5.0  # seconds between attempts to re-read the tasks from a failing store


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    def __init__(
        self, db: Database, executor: Executor, *, now: Callable[[], datetime] = utc_now,
        refresh: float = float("inf"),
    ) -> None:
        self._db = db
        self._executor = executor
        self._now = now
        self._refresh = refresh
        self._wake = trio.Event()
        self._next: dict[str, datetime] = {}

    def wake(self) -> None:
        """Re-read the tasks (after any change to them)."""
        self._wake.set()

    def next_runs(self) -> list[ScheduledRun]:
        return sorted((ScheduledRun(t, at) for t, at in self._next.items()), key=lambda r: r.at)

    def next_run(self, rule: SyncRule) -> datetime | None:
        """When the rule fires next, computed now: right even before the loop re-reads tasks."""
        if not (rule.enabled and rule.cron_expression):
            return None
        return next_fire(rule.cron_expression, self._now())

    def preview(self, expression: str, count: int) -> SchedulePreview:
        """The next fire times of `expression` as this scheduler would fire them, from now."""
        return preview(expression, self._now(), count)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        tasks = await self._db.run(lambda repo: repo.list_tasks())
        await self._catch_up(tasks)
        self._plan(tasks)
        task_status.started()
        while True:
            due = min(self._next.values(), default=None)
            with trio.move_on_after(min(self._seconds_until(due), self._refresh)):
                await self._wake.wait()
            now = self._now()
            for task, at in list(self._next.items()):
                if at <= now:
                    await self._fire(task, at)
            self._wake = trio.Event()  # before reading: a change from now on wakes us again
            self._plan(await self._tasks())

    async def _tasks(self) -> list[TaskRecord]:
        """The tasks, read again until the store answers: a PostgreSQL server that restarts
        must not end the scheduler (and with it the daemon); no tick fires meanwhile."""
        while True:
            try:
                return await self._db.run(lambda repo: repo.list_tasks())
            except StoreError as exc:
                log.warning("scheduler: cannot read the tasks (%s); again in %.0f s",
                            exc, STORE_RETRY)
                await trio.sleep(STORE_RETRY)

    def _plan(self, tasks: list[TaskRecord]) -> None:
        now = self._now()
        self._next = {
            t.name: next_fire(t.rule.cron_expression, now)
            for t in tasks
            if t.rule.enabled and t.rule.cron_expression
        }

    async def _catch_up(self, tasks: list[TaskRecord]) -> None:
        now = self._now()
        for task in tasks:
            cron = task.rule.cron_expression
            if not (task.rule.enabled and cron):
                continue
            last = task.last_execution.started if task.last_execution else None
            since = await self._db.run(partial(_created, name=task.name))
            missed = missed_fire(cron, last_run=last, since=since, now=now)
            if missed is not None:
                log.info("task %s missed its run at %s while the daemon was down: running now",
                         task.name, missed.isoformat())
                await self._fire(task.name, missed)

    async def _fire(self, task: str, tick: datetime) -> None:
        try:
            await self._executor.start(task, Trigger.CRON, tick=tick.timestamp())
        except AlreadyFiredError:
            log.info("task %s: the run at %s was started already", task, tick.isoformat())
        except ConflictError:
            log.warning("task %s: scheduled run skipped, the previous run is still going", task)
        except RegsyncError as exc:  # e.g. deleted since the schedule was read
            log.warning("task %s: scheduled run not started: %s", task, exc)

    def _seconds_until(self, when: datetime | None) -> float:
        if when is None:
            return float("inf")
        return max(0.0, (when - self._now()).total_seconds())


def _created(repo: Repo, *, name: str) -> datetime:
    return repo.task_created(name)
