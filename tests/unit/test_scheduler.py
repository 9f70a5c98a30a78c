"""Cron scheduling on trio's virtual clock: exact fire times, no double runs, one catch-up."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing
from regsync.daemon.base.errors import ConflictError, StoreError
from regsync.daemon.engine.events import Counters
from regsync.daemon.runtime.cron import missed_fire, next_fire
from regsync.daemon.runtime.scheduler import Scheduler
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule
from regsync.daemon.store import Database
from regsync.daemon.store.records import ExecutionQuery, ExecutionStatus, Trigger

BASE = datetime(2026, 11, 27, 11, 58, 30, tzinfo=UTC)


def virtual_now() -> datetime:
    return BASE + timedelta(seconds=trio.current_time())


@dataclass
class FakeExecutor:
    """Records starts; a task counts as running for `busy` virtual seconds."""

    nursery: trio.Nursery
    busy: float = 0.0
    starts: list[tuple[str, Trigger, datetime]] = field(default_factory=list)
    running: set[str] = field(default_factory=set)

    async def start(self, task: str, trigger: Trigger, **_: object) -> None:
        if task in self.running:
            raise ConflictError(f"task {task!r} is already running")
        self.starts.append((task, trigger, virtual_now()))
        if self.busy:
            self.running.add(task)
            self.nursery.start_soon(self._finish, task)

    async def _finish(self, task: str) -> None:
        await trio.sleep(self.busy)
        self.running.discard(task)


@pytest.fixture
def db() -> Iterator[Database]:
    with Database.open(":memory:", clock=BASE.timestamp) as database:
        database.run_sync(lambda repo: repo.create_registry(
            RegistrySettings(name="r", url="http://127.0.0.1:1")))
        yield database


def add_task(db: Database, name: str, cron: str, *, enabled: bool = True) -> None:
    rule = SyncRule(name=name, source=Endpoint("r", "a"), target=Endpoint("r", name),
                    enabled=enabled, cron_expression=cron)
    db.run_sync(lambda repo: repo.create_task(rule))


def test_cron_arithmetic() -> None:
    at = datetime(2026, 1, 1, 1, 59, tzinfo=UTC)
    assert next_fire("0 2 * * *", at) == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    assert next_fire("0 2 * * *", at.replace(hour=2, minute=0)) == datetime(2026, 1, 2, 2, 0,
                                                                              tzinfo=UTC)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime(2026, 1, 3, 9, 0, tzinfo=UTC)
    # the daemon was down over two 02:00 ticks: one catch-up, for the newest
    assert missed_fire("0 2 * * *", last_run=None, since=since, now=now) == \
        datetime(2026, 1, 3, 2, 0, tzinfo=UTC)
    assert missed_fire("0 2 * * *", last_run=now.replace(hour=3), since=since, now=now) is None
    assert missed_fire("0 2 * * *", last_run=None, since=now.replace(hour=5), now=now) is None


class FailingReads:
    """The store, with re-reads number `failing` (1-based) refused as a lost server would."""

    def __init__(self, db: Database, failing: set[int]) -> None:
        self._db, self._failing, self._reads = db, failing, 0

    async def run(self, fn: Any) -> Any:
        self._reads += 1
        if self._reads in self._failing:
            raise StoreError("the daemon's store failed: server closed the connection")
        return await self._db.run(fn)


async def run_for(db: Any, seconds: float, *, busy: float = 0.0) -> FakeExecutor:
    """Run a scheduler for `seconds` of virtual time; what it started.

    The clock may jump only after 20 ms of real idleness: a store call waits on the DB thread,
    and a jump during that wait would skip the ticks under test.
    """
    clock = trio.lowlevel.current_clock()
    assert isinstance(clock, trio.testing.MockClock)
    clock.autojump_threshold = 0.02
    async with trio.open_nursery() as nursery:
        executor = FakeExecutor(nursery, busy=busy)
        scheduler = Scheduler(db, executor, now=virtual_now)  # type: ignore[arg-type]
        await nursery.start(scheduler.run)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
    return executor


async def test_fires_at_exact_times(db: Database, autojump_clock: trio.testing.MockClock) -> None:
    add_task(db, "every5", "*/5 * * * *")
    add_task(db, "off", "* * * * *", enabled=False)
    executor = await run_for(db, 11 * 60)
    times = [(t, at.strftime("%H:%M:%S")) for t, _, at in executor.starts]
    assert times == [("every5", "12:00:00"), ("every5", "12:05:00")]
    assert {trigger for _, trigger, _ in executor.starts} == {Trigger.CRON}


async def test_a_tick_during_a_run_is_skipped(
    db: Database, autojump_clock: trio.testing.MockClock
) -> None:
    add_task(db, "busy", "* * * * *")
    executor = await run_for(db, 4 * 60, busy=90)  # each run lasts 1.5 ticks
    fired = [at.strftime("%H:%M") for _, _, at in executor.starts]
    assert fired == ["11:59", "12:01"]  # 12:00 came while the 11:59 run was going


async def test_one_catch_up_run_for_a_time_missed_while_down(
    db: Database, autojump_clock: trio.testing.MockClock
) -> None:
    add_task(db, "nightly", "0 2 * * *")
    # created two days ago, never run since: two 02:00 ticks were missed, one catch-up follows
    db.run_sync(lambda repo: _backdate("nightly", BASE - timedelta(days=2)))
    executor = await run_for(db, 60)
    assert [(t, trig) for t, trig, _ in executor.starts] == [("nightly", Trigger.CRON)]
    assert executor.starts[0][2] == BASE  # at start-up, not at the next 02:00


async def test_no_catch_up_for_a_new_task(
    db: Database, autojump_clock: trio.testing.MockClock
) -> None:
    add_task(db, "nightly", "0 2 * * *")
    assert (await run_for(db, 60)).starts == []


async def test_a_store_that_fails_for_a_while_does_not_end_the_schedule(
    db: Database, autojump_clock: trio.testing.MockClock
) -> None:
    add_task(db, "minutely", "* * * * *")
    # reads: 1 the tasks at start, 2 its creation time (catch-up), 3 the tasks after the 11:59
    # tick; after the 12:00 tick reads 4 and 5 fail and the third attempt, 10 s on, succeeds
    executor = await run_for(FailingReads(db, {4, 5}), 4 * 60)
    fired = [at.strftime("%H:%M") for _, _, at in executor.starts]
    assert fired == ["11:59", "12:00", "12:01", "12:02"]


def _backdate(name: str, when: datetime) -> None:
    from regsync.daemon.store.models import Task

    Task.update(created=when.timestamp()).where(Task.name == name).execute()


def test_execution_status_activity() -> None:
    assert ExecutionStatus.RUNNING.active and not ExecutionStatus.INTERRUPTED.active


async def test_two_schedulers_on_one_postgresql_fire_a_tick_once(
    pg_url: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Two leaders for a moment (one lost its session, another took over; here the second's
    clock is a minute late): both fire the 12:00 tick, the second after the first one's run
    ended, and the store's tick claim refuses the second."""
    from regsync.daemon.runtime.executor import Executor
    from regsync.daemon.runtime.hub import Hub
    from regsync.daemon.settings import GlobalSettings

    def late() -> datetime:
        return virtual_now() - timedelta(seconds=60)

    autojump_clock.autojump_threshold = 0.02
    with Database.open(pg_url) as one, Database.open(pg_url) as two:
        one.run_sync(lambda repo: repo.create_registry(
            RegistrySettings(name="r", url="http://127.0.0.1:1")))
        add_task(one, "t", "0 12 * * *")
        async with trio.open_nursery() as nursery:
            for db, now in ((one, virtual_now), (two, late)):
                executor = Executor(db, Hub(), global_settings=GlobalSettings, shared=True)
                await nursery.start(executor.run)
                await nursery.start(Scheduler(db, executor, now=now).run)
            await trio.sleep(120)  # 12:00:30: the first fired; its run ends
            (first,) = one.run_sync(lambda repo: repo.running())
            one.run_sync(lambda repo: repo.finish_execution(
                first.id, ExecutionStatus.SUCCEEDED, Counters()))
            await trio.sleep(60)  # 12:01:30: the late one fired its 12:00 too
            nursery.cancel_scope.cancel()
        executions = one.run_sync(lambda repo: repo.list_executions(ExecutionQuery()))[0]
    assert [(e.id, e.trigger) for e in executions] == [(first.id, Trigger.CRON)]
