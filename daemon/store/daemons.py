"""Which daemon runs what: a row per `regsyncd serve`, and which of them are alive.

At start-up a daemon takes what is left queued or running for what a crash left behind, and
resumes it. With one daemon per store (SQLite: the file lock of lock.py) every other row is a
dead daemon's. On a shared PostgreSQL store another daemon may be running those executions right
now, so each daemon records itself (`register_daemon`), its executions carry its id, and start-up
interrupts only the executions of daemons that are gone.

Alive means: the daemon's database session holds its advisory lock (postgres.SessionLocks). The
server drops a session's locks the moment its process dies (kill -9 included: the kernel closes
the socket), so the answer needs no timeout. The heartbeat is kept for people (who ran what,
when was it last seen). Running daemons take each other's runs over by their leases
(leases.py), not by this lock: a host cut off from the network, or a frozen process, keeps its
session, and so its lock, until TCP keepalive gives up, but stops renewing its leases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from peewee import fn

from .models import DaemonRow, Execution, Task
from .records import ExecutionRecord, ExecutionStatus

_ACTIVE = (ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value)


class Presence(Protocol):
    """How an engine tells live daemons from dead ones (run on the DB thread)."""

    def claim(self, daemon_id: int) -> None:
        """Mark this process as daemon `daemon_id` for as long as it lives."""

    def alive(self, daemon_ids: Iterable[int]) -> set[int]:
        """Those of `daemon_ids` (never this process's own) whose process still runs."""

    def lead(self) -> bool:
        """Try to become the one daemon that fires the cron ticks."""

    def leading(self) -> bool:
        """Whether this daemon still is that one."""

    @property
    def shared(self) -> bool:
        """Whether other live daemons may share the store (and its work)."""


class Alone:
    """SQLite: the daemon holds the store's file lock, so every other daemon is gone."""

    shared = False

    def claim(self, daemon_id: int) -> None:
        pass

    def alive(self, daemon_ids: Iterable[int]) -> set[int]:
        return set()

    def lead(self) -> bool:
        return True

    def leading(self) -> bool:
        return True


class DaemonOps:
    """`Repo`'s part about daemons (a mixin: the same one-transaction operations)."""

    _clock: Callable[[], float]
    _presence: Presence
    daemon_id: int | None = None

    def register_daemon(self, host: str, pid: int) -> int:
        """Record this process as a new daemon; the executions it creates carry its id."""
        now = self._clock()
        row = DaemonRow.create(host=host, pid=pid, started=now, heartbeat=now)
        self._presence.claim(row.id)
        self.daemon_id = int(row.id)
        return self.daemon_id

    def daemon_label(self) -> str:
        """This daemon as its executions name it ("" before it registered)."""
        if self.daemon_id is None:
            return ""
        row = DaemonRow.get_by_id(self.daemon_id)
        return f"{row.host} pid {row.pid} (#{row.id})"

    def lead(self) -> bool:
        """Become the daemon that fires the cron ticks, or keep being it."""
        return self._presence.leading() or self._presence.lead()

    def leading(self) -> bool:
        return self._presence.leading()

    def heartbeat(self) -> None:
        if self.daemon_id is not None:
            self._set_daemon(heartbeat=self._clock())

    def daemon_stopped(self) -> None:
        """A graceful shutdown (its runs are recorded as interrupted by the executor)."""
        if self.daemon_id is not None:
            now = self._clock()
            self._set_daemon(heartbeat=now, stopped=now)

    def interrupt_running(self) -> list[ExecutionRecord]:
        """At start-up: mark what a crash left queued or running (its daemon is gone: another
        daemon's live runs are left alone) as interrupted, and return every interrupted
        execution that is still its task's newest, to resume. A graceful shutdown records its
        runs as interrupted itself; a resumed one has a newer child."""
        ids = self._orphans()
        if ids:
            done = {"status": ExecutionStatus.INTERRUPTED.value, "finished": self._clock()}
            Execution.update(**done).where(Execution.id.in_(ids)).execute()
        newest = Execution.select(fn.MAX(Execution.id)).group_by(Execution.task)
        interrupted = Execution.status == ExecutionStatus.INTERRUPTED.value
        rows = Execution.select(Execution.id).where(Execution.id.in_(newest) & interrupted)
        return [self.get_execution(row.id) for row in rows.order_by(Execution.id)]

    def get_execution(self, id: int) -> ExecutionRecord:
        raise NotImplementedError  # Repo's

    def _orphans(self) -> list[int]:
        """Ids of queued or running executions whose daemon is gone (or never recorded)."""
        rows = list(Execution.select(Execution.id, Execution.daemon, Execution.claimable).where(
            Execution.status.in_(_ACTIVE)).order_by(Execution.id))
        rows = [r for r in rows if not r.claimable]  # it waits for any live daemon
        owner = {int(r.id): getattr(r, "daemon_id") for r in rows}  # noqa: B009 (the raw FK)
        others = {o for o in owner.values() if o is not None and o != self.daemon_id}
        alive = self._presence.alive(others) if others else set()
        return [id for id, daemon in owner.items() if daemon not in alive]

    def _lock_task(self, task_id: int) -> None:
        """Serialise creating executions of one task across daemons (PostgreSQL: a row lock
        until commit, so the second creator sees the first one's execution and is refused;
        SQLite's one writer at a time does that already)."""
        if Task._meta.database.for_update:
            Task.select(Task.id).where(Task.id == task_id).for_update().execute()

    def _set_daemon(self, **columns: object) -> None:
        DaemonRow.update(**columns).where(DaemonRow.id == self.daemon_id).execute()
