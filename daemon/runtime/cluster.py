"""Several regsyncd on one PostgreSQL store: the coordinator that shares the executions, and the
leadership that makes exactly one daemon fire the cron schedules.

The coordinator runs one store round (`Repo.coordinate`, store/leases.py) every `poll` seconds,
or at once when this daemon queued an execution: it renews this daemon's leases, stops what was
asked to stop through any daemon, drops what another daemon took over, takes over what a dead
daemon left (its lease lapsed), and claims queued executions while it has free slots.

The leader holds `pg_try_advisory_lock` on its store session and runs the scheduler; every
other daemon tries to take the lock every `poll` seconds, so when the leader dies (the server
drops a dead session's locks at once) another one fires the next tick. The store's tick claim
(`task.last_tick`) makes sure no tick fires twice even when two leaders overlap for a moment
(a session lost and retaken).

Timings: the lease defaults to LEASE seconds; `$REGSYNC_LEASE_SECONDS` (undocumented, for tests)
shortens it. A round is at most every second, and at least five per lease, so one late round
never costs a lease.
"""

from __future__ import annotations

import logging
import os

import trio

from ..base.errors import RegsyncError, StoreError
from ..store.db import Database
from .executor import Executor
from .scheduler import Scheduler

log = logging.getLogger("regsync.cluster")

LEASE = 30.0  # seconds an execution stays claimed after its daemon's last renewal
SCHEDULE_REFRESH = 5.0  # seconds between the leader's re-reads of the tasks


def lease_seconds() -> float:
    """LEASE, or `$REGSYNC_LEASE_SECONDS` when set to a positive number (tests)."""
    try:
        value = float(os.environ.get("REGSYNC_LEASE_SECONDS", ""))
    except ValueError:
        return LEASE
    return value if value > 0 else LEASE


def round_seconds(lease: float) -> float:
    return min(1.0, lease / 5)


class Coordinator:
    """This daemon's share of the work in a shared store (module docstring)."""

    def __init__(self, db: Database, executor: Executor, *, lease: float) -> None:
        self._db, self._executor = db, executor
        self._lease, self._poll = lease, round_seconds(lease)
        self._wake = trio.Event()
        executor.on_queued = self.wake

    def wake(self) -> None:
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._wake = trio.Event()
            try:
                await self._round()
            except StoreError as exc:  # the server restarts: leases are renewed next round
                log.warning("coordinator: %s", exc)
            except RegsyncError as exc:  # e.g. a task deleted mid-round: the next one is clean
                log.warning("coordinator round failed: %s", exc)
            with trio.move_on_after(self._poll):
                await self._wake.wait()

    async def _round(self) -> None:
        executor = self._executor
        free, mine = executor.free(), executor.running_ids()
        found = await self._db.run(
            lambda repo: repo.coordinate(free=free, mine=mine, lease=self._lease))
        for id in found.taken_over:
            log.warning("execution %s: its daemon stopped renewing its lease: interrupted", id)
        for resumed in found.resumed:
            log.info("resuming execution %s as %s", resumed.parent_id, resumed.id)
        for id in found.lost:
            executor.cancel(id, lost=True)
        for id in found.stop:
            executor.cancel(id)
        for claim in found.claimed:
            executor.adopt(claim)
        if found.resumed:
            self.wake()  # claim them now, if there is room


class Leadership:
    """Runs the scheduler while this daemon holds the leader's lock (module docstring)."""

    def __init__(self, db: Database, scheduler: Scheduler, *, poll: float) -> None:
        self._db, self._scheduler, self._poll = db, scheduler, poll
        self.leading = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            if await self._ask(lead=True):
                try:
                    await self._lead()
                except StoreError as exc:  # reading the tasks failed: lead again later
                    log.warning("scheduler: %s", exc)
                finally:
                    self.leading = False
            await trio.sleep(self._poll)

    async def _lead(self) -> None:
        log.info("this daemon fires the cron schedules now (the scheduler's leader)")
        self.leading = True
        async with trio.open_nursery() as nursery:
            await nursery.start(self._scheduler.run)
            while await self._ask(lead=False):
                await trio.sleep(self._poll)
            log.warning("this daemon lost the scheduler's lead (its store session was cut)")
            nursery.cancel_scope.cancel()

    async def _ask(self, *, lead: bool) -> bool:
        """Take (or keep) the lead; whether this daemon has it. A failing store: not now."""
        try:
            return await self._db.run(lambda repo: repo.lead() if lead else repo.leading())
        except StoreError:
            return False
