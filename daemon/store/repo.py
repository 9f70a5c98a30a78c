"""Every store operation, as plain synchronous methods run on the DB thread.

`Repo` never opens transactions and never touches threads: `Database.run(fn)` calls `fn(repo)`
inside one transaction on the one thread that owns the connection, so a caller composes several
methods (an Apply, a check-then-write) into one atomic operation just by calling them in `fn`.

Methods take and return records (`store.records`) and settings values, never rows, and fail
with `UnknownItemError`, `DuplicateItemError` or `ConflictError` naming the item, for a user.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from peewee import JOIN, ModelSelect, fn

from ..base.errors import ConflictError, DuplicateItemError, UnknownItemError
from ..engine.events import Counters
from ..settings import RegistrySettings, SyncRule
from . import models as m
from .daemons import Alone, DaemonOps, Presence
from .leases import LeaseOps
from .models import DaemonRow, Execution, Registry, Task
from .records import (
    ExecutionQuery,
    ExecutionRecord,
    ExecutionStatus,
    RegistryRecord,
    Stats,
    TaskRecord,
    Trigger,
    password_stays,
)
from .results import ResultOps, chunks
from .scope import ScopeOps

_ACTIVE = (ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value)


class Repo(ResultOps, LeaseOps, DaemonOps, ScopeOps):
    """The store's operations; only ever called on the DB thread (see module docstring)."""

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 presence: Presence | None = None) -> None:
        self._clock, self._presence = clock, presence or Alone()

    # Registries --------------------------------------------------------------------------------
    def create_registry(self, settings: RegistrySettings) -> RegistryRecord:
        if Registry.get_or_none(Registry.name == settings.name) is not None:
            raise DuplicateItemError(f"a registry named {settings.name!r} exists already")
        Registry.create(**m.registry_columns(settings))
        return RegistryRecord(settings)

    def get_registry(self, name: str) -> RegistryRecord:
        row = self._registry_row(name)
        return RegistryRecord(m.registry_settings(row), self._used_by(row.id))

    def list_registries(self) -> list[RegistryRecord]:
        users: dict[int, set[str]] = {}
        for task in Task.select(Task.name, Task.source_registry, Task.target_registry):
            for registry_id in (
                m.ref_id(task, "source_registry"),
                m.ref_id(task, "target_registry"),
            ):
                users.setdefault(registry_id, set()).add(task.name)
        rows = Registry.select().order_by(Registry.name)
        return [
            RegistryRecord(m.registry_settings(r), tuple(sorted(users.get(r.id, ())))) for r in rows
        ]

    def update_registry(
        self, settings: RegistrySettings, *, keep_password: bool = False
    ) -> RegistryRecord:
        """Replace a registry's settings. `keep_password` keeps the stored password (the API
        never sends it back, so an edit that does not touch it must not erase it) unless the url
        or the user changes: then it is dropped, and the record says so."""
        row = self._registry_row(settings.name)
        columns = m.registry_columns(settings)
        dropped = False
        if keep_password and password_stays(m.registry_settings(row), settings):
            columns["password"] = row.password
        elif keep_password:
            dropped = bool(row.password)
        Registry.update(**columns).where(Registry.id == row.id).execute()
        return replace(self.get_registry(settings.name), password_dropped=dropped)

    def delete_registry(self, name: str) -> None:
        row = self._registry_row(name)
        users = self._used_by(row.id)
        if users:
            raise ConflictError(f"registry {name!r} is used by tasks: {', '.join(users)}")
        row.delete_instance()

    def upsert_registry(self, settings: RegistrySettings) -> RegistryRecord | None:
        """Create or replace (password included) by name, as Apply does; None if created, else
        the updated record (whose `password_dropped` tells a stored password went)."""
        row = Registry.get_or_none(Registry.name == settings.name)
        if row is None:
            self.create_registry(settings)
            return None
        dropped = bool(row.password) and not settings.password
        return replace(self.update_registry(settings), password_dropped=dropped)

    # Tasks -------------------------------------------------------------------------------------
    def create_task(self, rule: SyncRule) -> TaskRecord:
        if Task.get_or_none(Task.name == rule.name) is not None:
            raise DuplicateItemError(f"a task named {rule.name!r} exists already")
        Task.create(**self._task_columns(rule), created=self._clock())
        return self.get_task(rule.name)

    def get_task(self, name: str) -> TaskRecord:
        return self._task_records(Task.name == name, missing=name)[0]

    def list_tasks(self) -> list[TaskRecord]:
        return self._task_records(None)

    def task_created(self, name: str) -> datetime:
        """When the task was created (kept by updates and upserts): the scheduler's starting
        point for a task that never ran."""
        return m.from_epoch(self._task_row(name).created)

    def update_task(self, rule: SyncRule) -> TaskRecord:
        row = self._task_row(rule.name)
        Task.update(**self._task_columns(rule)).where(Task.id == row.id).execute()
        return self.get_task(rule.name)

    def delete_task(self, name: str) -> None:
        """Delete a task and its history. Raises ConflictError while it has an active run."""
        row = self._task_row(name)
        active = self._active_execution(row.id)
        if active is not None:
            raise ConflictError(f"task {name!r} is running (execution {active}); stop it first")
        row.delete_instance()

    def set_task_enabled(self, name: str, enabled: bool) -> TaskRecord:
        row = self._task_row(name)
        Task.update(enabled=enabled).where(Task.id == row.id).execute()
        return self.get_task(name)

    def upsert_task(self, rule: SyncRule) -> bool:
        """Create or replace by name, as Apply does; True if created."""
        if Task.get_or_none(Task.name == rule.name) is None:
            self.create_task(rule)
            return True
        self.update_task(rule)
        return False

    # Executions --------------------------------------------------------------------------------
    def create_execution(
        self, task: str, trigger: Trigger, parent_id: int | None = None, *,
        tick: float | None = None, for_any: bool = False, force_prune: bool = False,
    ) -> ExecutionRecord:
        """A new queued execution: this daemon's, or any daemon's to claim (`for_any`).

        Raises: ConflictError if the task has one queued or running (checked in the insert's
        transaction: two callers cannot both win); AlreadyFiredError if cron `tick` fired."""
        row = self._task_row(task)
        self._lock_task(row.id)
        if tick is not None:
            self.claim_tick(row.id, tick)
        active = self._active_execution(row.id)
        if active is not None:
            raise ConflictError(f"task {task!r} is already running (execution {active})")
        if parent_id is not None:
            self._status(parent_id)
        created = Execution.create(
            task=row.id,
            trigger=trigger.value,
            status=ExecutionStatus.QUEUED.value,
            started=self._clock(),
            parent=parent_id,
            daemon=None if for_any else self.daemon_id,
            claimable=for_any,
            force_prune=force_prune,
        )
        return self.get_execution(created.id)

    def mark_running(self, id: int) -> ExecutionRecord:
        """queued -> running; `started` becomes now (time spent queued is not run time)."""
        status = self._status(id)
        if status != ExecutionStatus.QUEUED.value:
            raise ConflictError(f"execution {id} is {status}, not queued")
        self._set(id, status=ExecutionStatus.RUNNING.value, started=self._clock())
        return self.get_execution(id)

    def finish_execution(
        self, id: int, status: ExecutionStatus, counters: Counters, error: str = ""
    ) -> ExecutionRecord:
        """Record the end of an active execution. Raises ConflictError if it ended already."""
        if status.active:
            raise ValueError(f"{status.value} is not a final status")
        ended = self._status(id)
        if ended not in _ACTIVE:
            raise ConflictError(f"execution {id} has already ended ({ended})")
        columns = m.counter_columns(counters)
        self._set(id, status=status.value, finished=self._clock(), error=error, **columns)
        return self.get_execution(id)

    def update_counters(self, id: int, counters: Counters) -> None:
        self._status(id)
        self._set(id, **m.counter_columns(counters))

    def get_execution(self, id: int) -> ExecutionRecord:
        row = self._execution_row(id)
        return m.execution_record(row, row.task.name)

    def list_executions(self, query: ExecutionQuery) -> tuple[list[ExecutionRecord], int | None]:
        """Newest first; the second value is the `before_id` of the next page (None: last page)."""
        select = _executions()
        if query.task is not None:
            select = select.where(Execution.task == self._task_row(query.task).id)
        if query.statuses:
            select = select.where(Execution.status.in_([s.value for s in query.statuses]))
        if query.before_id is not None:
            select = select.where(Execution.id < query.before_id)
        rows = list(select.order_by(Execution.id.desc()).limit(max(query.limit, 1) + 1))
        page = [m.execution_record(r, r.task.name) for r in rows[: max(query.limit, 1)]]
        more = len(rows) > len(page)
        return page, (page[-1].id if more else None)

    def running(self) -> list[ExecutionRecord]:
        """Every queued or running execution, oldest first."""
        rows = _executions().where(Execution.status.in_(_ACTIVE)).order_by(Execution.id)
        return [m.execution_record(r, r.task.name) for r in rows]

    # Results and logs --------------------------------------------------------------------------
    # Statistics and housekeeping ---------------------------------------------------------------
    def stats(self, now: datetime | None = None) -> Stats:
        """Totals for the dashboard. "Today" starts at 00:00 UTC of `now`: an execution counts
        for today when it finished since then; bytes count for runs that finished today or are
        still active (a long run shows its progress on the day it happens)."""
        moment = now or datetime.fromtimestamp(self._clock(), UTC)
        midnight = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        since = m.to_epoch(midnight)
        today = Execution.finished >= since
        ok, failed = ExecutionStatus.SUCCEEDED.value, ExecutionStatus.FAILED.value
        return Stats(
            tasks_total=Task.select().count(),
            tasks_enabled=Task.select().where(Task.enabled == True).count(),
            running=Execution.select().where(Execution.status.in_(_ACTIVE)).count(),
            succeeded_today=_count((Execution.status == ok) & today),
            failed_today=_count((Execution.status == failed) & today),
            succeeded_total=_count(Execution.status == ok),
            failed_total=_count(Execution.status == failed),
            executions_total=Execution.select().count(),
            bytes_copied_today=int(
                Execution.select(fn.COALESCE(fn.SUM(Execution.bytes_copied), 0))
                .where(today | Execution.status.in_(_ACTIVE))
                .scalar()
            ),
            registries_total=Registry.select().count(),
        )

    def prune_history(self, task: str, *, keep: int) -> int:
        """Delete all but the newest `keep` ended executions of `task` (their results and logs
        go with them); returns how many executions were deleted."""
        ended = (Execution.task == self._task_row(task).id) & Execution.status.not_in(_ACTIVE)
        old = Execution.select(Execution.id).where(ended).order_by(Execution.id.desc())
        doomed = [row.id for row in old.offset(keep)]
        for batch in chunks(doomed, 500):
            Execution.delete().where(Execution.id.in_(batch)).execute()
        return len(doomed)

    # Helpers -----------------------------------------------------------------------------------
    def _registry_row(self, name: str) -> Registry:
        row = Registry.get_or_none(Registry.name == name)
        if row is None:
            raise UnknownItemError(f"no registry named {name!r}")
        return row

    def _task_row(self, name: str) -> Task:
        row = Task.get_or_none(Task.name == name)
        if row is None:
            raise UnknownItemError(f"no task named {name!r}")
        return row

    def _execution_row(self, id: int) -> Execution:
        row: Execution | None = _executions().where(Execution.id == id).first()
        if row is None:
            raise UnknownItemError(f"no execution with id {id}")
        return row

    def _used_by(self, registry_id: int) -> tuple[str, ...]:
        uses = (Task.source_registry == registry_id) | (Task.target_registry == registry_id)
        return tuple(t.name for t in Task.select(Task.name).where(uses).order_by(Task.name))

    def _task_columns(self, rule: SyncRule) -> dict[str, object]:
        """Row values for `rule`; an endpoint naming no stored registry is an UnknownItemError
        naming the field, as the config loader would."""
        ids: dict[str, int] = {}
        for field, endpoint in (("source", rule.source), ("target", rule.target)):
            row = Registry.get_or_none(Registry.name == endpoint.registry)
            if row is None:
                known = ", ".join(r.name for r in Registry.select().order_by(Registry.name))
                raise UnknownItemError(
                    f"task {rule.name!r}: {field}.registry: no registry named "
                    f"{endpoint.registry!r} (known: {known or 'none'})"
                )
            ids[field] = row.id
        return m.task_columns(rule, ids["source"], ids["target"])

    def _task_records(self, where: object, *, missing: str | None = None) -> list[TaskRecord]:
        select = Task.select().order_by(Task.name)
        if where is not None:
            select = select.where(where)
        rows = list(select)
        if not rows and missing is not None:
            raise UnknownItemError(f"no task named {missing!r}")
        names = {r.id: r.name for r in Registry.select(Registry.id, Registry.name)}
        latest = self._latest_by_task([r.id for r in rows])
        return [m.task_record(r, names, latest.get(r.id)) for r in rows]

    def _latest_by_task(self, task_ids: list[int]) -> dict[int, ExecutionRecord]:
        newest = (
            Execution.select(fn.MAX(Execution.id))
            .where(Execution.task.in_(task_ids))
            .group_by(Execution.task)
        )
        rows = _executions().where(Execution.id.in_(newest))
        return {r.task.id: m.execution_record(r, r.task.name) for r in rows}

    def _active_execution(self, task_id: int) -> int | None:
        active = (Execution.task == task_id) & Execution.status.in_(_ACTIVE)
        row = Execution.select(Execution.id).where(active).first()
        return None if row is None else int(row.id)

    def _set(self, id: int, **columns: object) -> None:
        Execution.update(**columns).where(Execution.id == id).execute()


def _executions() -> ModelSelect[Execution]:
    """Executions joined with their task's name and daemon: records need no second query."""
    return (Execution.select(Execution, Task.id, Task.name, DaemonRow.id, DaemonRow.host,
                             DaemonRow.pid)
            .join(Task, JOIN.INNER).switch(Execution).join(DaemonRow, JOIN.LEFT_OUTER))


def _count(condition: object) -> int:
    return int(Execution.select().where(condition).count())
