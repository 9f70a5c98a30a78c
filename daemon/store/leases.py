"""Sharing the work of several daemons through one PostgreSQL store: leases, claims, stops, ticks.

An execution is created queued and `claimable` (by any daemon) when the store is shared. Every
daemon's coordinator calls `coordinate` about once a second, one transaction that:

1. renews the lease of every execution it runs (`lease_until` = server time + the lease);
2. tells it which of its executions were asked to stop (through any daemon's API) and which
   are no longer its own (its lease lapsed while it was frozen or cut off, and another daemon
   took the run over: it must drop it);
3. takes over the executions whose lease lapsed (their daemon died: kill -9, a lost host):
   each is recorded as interrupted and, when it is still its task's newest, continued by a
   RESUME execution that any daemon claims (the same resume as after a restart: the tags its
   chain finished are not copied again);
4. claims up to `free` queued executions (`--max-running` minus what it runs), oldest first.

Rows are taken with `FOR UPDATE SKIP LOCKED`: two daemons claiming at once get different rows,
never the same one, and neither waits for the other. Times come from the server's clock, so
hosts with skewed clocks agree on when a lease lapsed.

The cron ticks: `claim_tick` moves `task.last_tick` forward in the transaction that creates the
tick's execution; a second daemon firing the same tick (a leader that lost its session and one
that took over) finds it claimed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from peewee import fn

from ..base.errors import AlreadyFiredError, ConflictError, UnknownItemError
from ..engine.events import TagResult
from . import models as m
from .models import Execution, LogRow, TagResultRow, Task
from .records import ExecutionRecord, ExecutionStatus, Trigger

_ACTIVE = (ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value)
_QUEUED, _RUNNING = ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value


@dataclass(frozen=True, slots=True)
class Claim:
    """An execution this daemon now runs, with the tags its trigger limits it to."""

    record: ExecutionRecord
    only_tags: frozenset[str] | None = None  # a retry: its parent's failed tags
    except_tags: frozenset[str] = frozenset()  # a resume: what its chain finished


@dataclass(frozen=True, slots=True)
class Coordination:
    """What one `coordinate` call found for this daemon."""

    claimed: tuple[Claim, ...] = ()
    stop: frozenset[int] = frozenset()  # its executions asked to stop
    lost: frozenset[int] = frozenset()  # executions it runs that another daemon took over
    taken_over: tuple[int, ...] = ()  # lapsed executions it recorded as interrupted
    resumed: tuple[ExecutionRecord, ...] = field(default=())


class LeaseOps:
    """`Repo`'s part about shared work (a mixin, like `DaemonOps`)."""

    _clock: Callable[[], float]
    daemon_id: int | None

    def coordinate(self, *, free: int, mine: Collection[int], lease: float) -> Coordination:
        """One round of the coordinator (module docstring); `mine`: the ids this process runs."""
        now = self._server_now()
        me = self.daemon_id
        active = Execution.status.in_(_ACTIVE)
        own = (Execution.daemon == me) & active
        # only what this process runs: a row of ours it does not run lapses like a dead one's
        running = own & Execution.id.in_(list(mine))
        Execution.update(lease_until=now + lease).where(running).execute()
        still = {int(r.id) for r in Execution.select(Execution.id).where(running)}
        stop = {int(r.id) for r in Execution.select(Execution.id).where(
            running & (Execution.stop_requested == True))}
        lapsed = _locked(Execution.select(Execution.id).where(
            active & (Execution.lease_until < now)).order_by(Execution.id))
        resumed = [r for id in lapsed if (r := self._take_over(id, now)) is not None]
        claimed = []
        if free > 0:
            queued = _locked(Execution.select(Execution.id).where(
                (Execution.status == _QUEUED) & (Execution.claimable == True)
            ).order_by(Execution.id).limit(free))
            for id in queued:
                Execution.update(daemon=me, status=_RUNNING, started=now, claimable=False,
                                 lease_until=now + lease).where(Execution.id == id).execute()
                claimed.append(self._claim(id))
        return Coordination(tuple(claimed), frozenset(stop), frozenset(set(mine) - still),
                            tuple(lapsed), tuple(resumed))

    def request_stop(self, task: str) -> ExecutionRecord:
        """Stop the task's active execution through the store: an unclaimed one ends stopped
        here; a claimed one is flagged for its daemon, which stops it at its next round.

        Raises: ConflictError when the task has no active execution."""
        row = Task.get_or_none(Task.name == task)
        if row is None:
            raise UnknownItemError(f"no task named {task!r}")
        active = _locked(Execution.select(Execution.id).where(
            (Execution.task == row.id) & Execution.status.in_(_ACTIVE)), skip=False)
        if not active:
            raise ConflictError(f"task {task!r} is not running")
        id = active[0]
        if Execution.get_by_id(id).claimable:
            Execution.update(status=ExecutionStatus.STOPPED.value, finished=self._server_now(),
                             error="stopped", claimable=False).where(Execution.id == id).execute()
        else:
            Execution.update(stop_requested=True).where(Execution.id == id).execute()
        return self.get_execution(id)

    def claim_tick(self, task_id: int, tick: float) -> None:
        """Record cron tick `tick` (UNIX seconds) as fired for the task, in the caller's
        transaction (the task row is locked by then).

        Raises: AlreadyFiredError when this tick, or a later one, was fired already."""
        moved = Task.update(last_tick=tick).where(
            (Task.id == task_id) & (Task.last_tick.is_null() | (Task.last_tick < tick))
        ).execute()
        if not moved:
            raise AlreadyFiredError(f"the tick at {tick} was fired already")

    def running_by_daemon(self) -> dict[int | None, int]:
        """How many executions each daemon runs now (None: queued for any)."""
        rows = (Execution.select(Execution.daemon, fn.COUNT(Execution.id).alias("n"))
                .where(Execution.status.in_(_ACTIVE)).group_by(Execution.daemon))
        return {getattr(r, "daemon_id"): int(getattr(r, "n")) for r in rows}  # noqa: B009

    def results_since(self, id: int, after: int, *, limit: int = 1000) -> list[tuple[int, TagResult]]:
        """Tag results recorded after the one numbered `after` (0: from the first), with their
        numbers: the store feed's cursor."""
        rows = (TagResultRow.select().where((TagResultRow.execution == id) & (TagResultRow.id > after))
                .order_by(TagResultRow.id).limit(limit))
        return [(int(r.id), m.tag_result(r)) for r in rows]

    def log_count(self, id: int) -> int:
        return int(LogRow.select().where(LogRow.execution == id).count())

    def last_result(self, id: int) -> int:
        last = TagResultRow.select(fn.MAX(TagResultRow.id)).where(TagResultRow.execution == id)
        return int(last.scalar() or 0)

    def _take_over(self, id: int, now: float) -> ExecutionRecord | None:
        """Record a lapsed execution as interrupted and continue it when it is its task's
        newest; one a user asked to stop (through any daemon) is recorded stopped instead, and
        not continued: its daemon died before it could act on the stop."""
        old = self.get_execution(id)
        if Execution.get_by_id(id).stop_requested:
            Execution.update(status=ExecutionStatus.STOPPED.value, finished=now, error="stopped",
                             lease_until=None).where(Execution.id == id).execute()
            return None
        error = f"interrupted: its daemon ({old.daemon or 'unknown'}) stopped renewing its lease"
        Execution.update(status=ExecutionStatus.INTERRUPTED.value, finished=now, error=error,
                         lease_until=None).where(Execution.id == id).execute()
        return self.hand_over(id)

    def hand_over(self, id: int) -> ExecutionRecord | None:
        """Queue a RESUME of interrupted execution `id` for any daemon (a daemon shutting down
        hands its runs to the others), when it is still its task's newest."""
        now = self._server_now()
        old = Execution.get_by_id(id)
        task_id = getattr(old, "task_id")  # noqa: B009 (the raw FK)
        newest = Execution.select(fn.MAX(Execution.id)).where(Execution.task == task_id).scalar()
        if newest != id:
            return None
        created = Execution.create(task=task_id, trigger=Trigger.RESUME.value, status=_QUEUED,
                                   started=now, parent=id, daemon=None, claimable=True,
                                   force_prune=bool(old.force_prune))
        return self.get_execution(created.id)

    def _claim(self, id: int) -> Claim:
        record = self.get_execution(id)
        if record.parent_id is None:
            return Claim(record)
        if record.trigger is Trigger.RESUME:
            return Claim(record, except_tags=frozenset(done_in_chain(self, record.parent_id)))
        if record.trigger is Trigger.RETRY:
            failed = self.failed_tags(record.parent_id)
            # tag "" is the rule itself (its tags could not be listed): retry all of it
            return Claim(record, only_tags=None if "" in failed else frozenset(failed))
        return Claim(record)

    def _server_now(self) -> float:
        db = Execution._meta.database
        if not db.for_update:  # SQLite: one daemon, its own clock
            return self._clock()
        row = db.execute_sql("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()
        return float(row[0])

    # Repo's --------------------------------------------------------------------------------
    def get_execution(self, id: int) -> ExecutionRecord:
        raise NotImplementedError

    def failed_tags(self, id: int) -> set[str]:
        raise NotImplementedError

    def done_tags(self, id: int) -> set[str]:
        raise NotImplementedError


def done_in_chain(repo: LeaseOps, execution_id: int) -> set[str]:
    """Tags finished by an execution and the ones it resumed (a resume of a resume...)."""
    done: set[str] = set()
    current: int | None = execution_id
    while current is not None:
        record = repo.get_execution(current)
        done |= repo.done_tags(current)
        current = record.parent_id if record.trigger is Trigger.RESUME else None
    return done


def _locked(select: object, *, skip: bool = True) -> list[int]:
    """The ids `select` finds, rows locked for this transaction and skipped when another holds
    them, or waited for (`skip=False`) (PostgreSQL; SQLite has one writer at a time anyway)."""
    query = select
    if Execution._meta.database.for_update:
        clause = "FOR UPDATE SKIP LOCKED" if skip else "FOR UPDATE"
        query = select.for_update(clause)  # type: ignore[attr-defined]
    return [int(r.id) for r in query]  # type: ignore[attr-defined]
