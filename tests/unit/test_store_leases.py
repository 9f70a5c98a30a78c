"""Shared work in the store (schema 8, store/leases.py): claims skip what another daemon is
claiming, a lapsed lease is taken over and resumed without the tags already done, stops go
through the store, a cron tick is claimed once, and one session leads the scheduler."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psycopg2
import pytest
from regsync.daemon.base.errors import AlreadyFiredError, ConflictError
from regsync.daemon.engine.events import Counters, Outcome, TagResult
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule
from regsync.daemon.store import Database, Repo
from regsync.daemon.store.records import ExecutionQuery, ExecutionStatus, Trigger

NAMES = [f"t{i}" for i in range(6)]


def _seed(repo: Repo) -> None:
    repo.create_registry(RegistrySettings("src", "https://src.example"))
    repo.create_registry(RegistrySettings("dst", "https://dst.example"))
    for name in NAMES:
        repo.create_task(SyncRule(name, Endpoint("src", name), Endpoint("dst", name)))


@pytest.fixture
def pair(pg_url: str) -> Iterator[tuple[Database, Database]]:
    """Two daemons on one PostgreSQL database."""
    with Database.open(pg_url) as one, Database.open(pg_url) as two:
        one.run_sync(_seed)
        one.run_sync(lambda r: r.register_daemon("host-1", 1))
        two.run_sync(lambda r: r.register_daemon("host-2", 2))
        yield one, two


def _queue(db: Database, name: str, trigger: Trigger = Trigger.MANUAL,
           parent: int | None = None) -> int:
    return db.run_sync(lambda r: r.create_execution(name, trigger, parent, for_any=True)).id


def test_a_queued_execution_waits_for_any_daemon_and_says_who_claimed_it(
    pair: tuple[Database, Database],
) -> None:
    one, two = pair
    id = _queue(one, "t0")
    queued = two.run_sync(lambda r: r.get_execution(id))
    assert (queued.status, queued.daemon_id, queued.daemon) == (ExecutionStatus.QUEUED, None, "")
    # a daemon starting up leaves it alone: it is nobody's orphan
    assert two.run_sync(lambda r: r.interrupt_running()) == []
    found = two.run_sync(lambda r: r.coordinate(free=2, mine=(), lease=30))
    assert [c.record.id for c in found.claimed] == [id]
    claimed = one.run_sync(lambda r: r.get_execution(id))
    assert claimed.status is ExecutionStatus.RUNNING
    assert claimed.daemon == f"host-2 pid 2 (#{claimed.daemon_id})"
    assert one.run_sync(lambda r: r.coordinate(free=2, mine=(), lease=30)).claimed == ()


def test_a_claim_skips_the_rows_another_daemon_is_claiming_and_never_waits(
    pg_url: str, pair: tuple[Database, Database],
) -> None:
    one, _ = pair
    ids = [_queue(one, name) for name in NAMES]
    with contextlib.closing(psycopg2.connect(pg_url)) as other, other.cursor() as cur:
        # another daemon, mid-claim: its transaction holds the three oldest rows
        cur.execute("SELECT id FROM execution WHERE claimable ORDER BY id LIMIT 3 "
                    "FOR UPDATE SKIP LOCKED")
        theirs = [row[0] for row in cur.fetchall()]
        started = time.monotonic()
        found = one.run_sync(lambda r: r.coordinate(free=6, mine=(), lease=30))
        assert time.monotonic() - started < 2
        assert theirs == ids[:3]
        assert [c.record.id for c in found.claimed] == ids[3:]
        other.rollback()
    assert one.run_sync(lambda r: r.running_by_daemon()) == {
        one.run_sync(lambda r: r.daemon_id): 3, None: 3}


def test_free_slots_bound_the_claim(pair: tuple[Database, Database]) -> None:
    one, two = pair
    ids = [_queue(one, name) for name in NAMES]
    assert [c.record.id for c in one.run_sync(
        lambda r: r.coordinate(free=2, mine=(), lease=30)).claimed] == ids[:2]
    assert one.run_sync(lambda r: r.coordinate(free=0, mine=ids[:2], lease=30)).claimed == ()
    assert [c.record.id for c in two.run_sync(
        lambda r: r.coordinate(free=3, mine=(), lease=30)).claimed] == ids[2:5]


def test_a_lapsed_lease_is_interrupted_resumed_without_its_done_tags_and_lost_by_its_daemon(
    pair: tuple[Database, Database],
) -> None:
    one, two = pair
    id = _queue(one, "t0")
    assert one.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=0.3)).claimed
    done = [TagResult("t0", "1.0", Outcome.COPIED), TagResult("t0", "1.1", Outcome.SKIPPED),
            TagResult("t0", "1.2", Outcome.FAILED, reason="x")]
    one.run_sync(lambda r: r.add_results(id, done))
    # a renewal keeps it: the other daemon takes nothing over
    assert two.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=30)).taken_over == ()
    time.sleep(0.5)  # daemon one stops renewing (frozen, cut off, killed)
    found = two.run_sync(lambda r: r.coordinate(free=0, mine=(), lease=30))
    assert found.taken_over == (id,)
    old = two.run_sync(lambda r: r.get_execution(id))
    assert old.status is ExecutionStatus.INTERRUPTED and "stopped renewing" in old.error
    (resume,) = found.resumed
    assert (resume.trigger, resume.parent_id, resume.status) == (
        Trigger.RESUME, id, ExecutionStatus.QUEUED)
    claim = two.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=30)).claimed[0]
    assert claim.record.id == resume.id and claim.except_tags == {"1.0", "1.1"}
    # daemon one comes back: its run is no longer its own
    assert one.run_sync(lambda r: r.coordinate(free=0, mine=[id], lease=30)).lost == {id}
    with pytest.raises(ConflictError, match="already ended"):
        one.run_sync(lambda r: r.finish_execution(id, ExecutionStatus.SUCCEEDED, Counters()))


def test_a_retry_claimed_by_any_daemon_covers_its_parents_failed_tags(
    pair: tuple[Database, Database],
) -> None:
    one, two = pair
    first = _queue(one, "t0")
    one.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=30))
    one.run_sync(lambda r: r.add_results(first, [
        TagResult("t0", "a", Outcome.COPIED), TagResult("t0", "b", Outcome.FAILED)]))
    one.run_sync(lambda r: r.finish_execution(first, ExecutionStatus.FAILED, Counters()))
    retry = _queue(one, "t0", Trigger.RETRY, first)
    claim = two.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=30)).claimed[0]
    assert (claim.record.id, claim.only_tags) == (retry, frozenset({"b"}))


def test_a_stop_goes_through_the_store(pair: tuple[Database, Database]) -> None:
    one, two = pair
    queued = _queue(one, "t0")
    stopped = two.run_sync(lambda r: r.request_stop("t0"))  # nobody claimed it: stopped now
    assert (stopped.id, stopped.status) == (queued, ExecutionStatus.STOPPED)
    assert one.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=30)).claimed == ()

    running = _queue(one, "t1")
    one.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=30))
    asked = two.run_sync(lambda r: r.request_stop("t1"))
    assert asked.status is ExecutionStatus.RUNNING  # its daemon stops it at its next round
    assert one.run_sync(lambda r: r.coordinate(free=1, mine=[running], lease=30)).stop == {running}
    with pytest.raises(ConflictError, match="not running"):
        two.run_sync(lambda r: r.request_stop("t2"))


def test_a_stop_asked_of_a_dead_daemon_ends_its_run_stopped_not_resumed(
    pair: tuple[Database, Database],
) -> None:
    """The stop reached the store, but the owner died before its next round: the daemon taking
    the lapsed lease over records the stop; it used to resume the run (a stop became a rerun)."""
    one, two = pair
    id = _queue(one, "t0")
    assert one.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=0.3)).claimed
    assert two.run_sync(lambda r: r.request_stop("t0")).status is ExecutionStatus.RUNNING
    time.sleep(0.5)  # daemon one dies before it sees the stop
    found = two.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=30))
    assert found.taken_over == (id,) and found.resumed == () and found.claimed == ()
    ended = two.run_sync(lambda r: r.get_execution(id))
    assert (ended.status, ended.error) == (ExecutionStatus.STOPPED, "stopped")


def test_a_cron_tick_is_fired_once(store_url: str) -> None:
    with Database.open(store_url) as one, Database.open(store_url) as two:
        one.run_sync(_seed)
        first = one.run_sync(lambda r: r.create_execution("t0", Trigger.CRON, tick=1000.0))
        one.run_sync(lambda r: r.finish_execution(first.id, ExecutionStatus.SUCCEEDED,
                                                  Counters()))
        for tick in (1000.0, 940.0):  # the same tick again, or an older one: refused
            with pytest.raises(AlreadyFiredError):
                two.run_sync(lambda r, t=tick: r.create_execution(  # type: ignore[misc]
                    "t0", Trigger.CRON, tick=t))
        assert [e.id for e in two.run_sync(lambda r: r.list_executions(ExecutionQuery())[0])] == [first.id]
        # a tick refused because the task still runs is not recorded as fired
        busy = one.run_sync(lambda r: r.create_execution("t1", Trigger.MANUAL))
        with pytest.raises(ConflictError):
            two.run_sync(lambda r: r.create_execution("t1", Trigger.CRON, tick=1060.0))
        one.run_sync(lambda r: r.finish_execution(busy.id, ExecutionStatus.SUCCEEDED,
                                                  Counters()))
        assert two.run_sync(lambda r: r.create_execution("t1", Trigger.CRON, tick=1060.0))
        assert two.run_sync(lambda r: r.create_execution("t0", Trigger.CRON, tick=1060.0))


def test_one_session_leads_and_another_takes_over_when_it_ends(pg_url: str) -> None:
    with Database.open(pg_url) as one:
        with Database.open(pg_url) as two:
            assert one.run_sync(lambda r: r.lead()) and one.run_sync(lambda r: r.lead())
            assert not two.run_sync(lambda r: r.lead()) and not two.run_sync(lambda r: r.leading())
        with Database.open(pg_url) as three:
            assert not three.run_sync(lambda r: r.lead())
    with Database.open(pg_url) as four:  # the leader's session ended: its lock went with it
        assert four.run_sync(lambda r: r.lead()) and four.run_sync(lambda r: r.leading())


def test_a_claimed_row_its_daemon_does_not_run_is_not_kept_alive(
    pair: tuple[Database, Database],
) -> None:
    """Renewals cover what the daemon's executor runs, not every row bearing its id: one it
    lost track of lapses and is resumed like a dead daemon's."""
    one, _ = pair
    id = _queue(one, "t0")
    assert one.run_sync(lambda r: r.coordinate(free=1, mine=(), lease=0.3)).claimed
    time.sleep(0.5)
    found = one.run_sync(lambda r: r.coordinate(free=0, mine=(), lease=30))
    assert found.taken_over == (id,) and [r.parent_id for r in found.resumed] == [id]


def test_a_forced_prune_is_stored_and_its_resume_on_another_daemon_is_forced_too(
    pair: tuple[Database, Database],
) -> None:
    """RunTask's force_prune lives in the execution's row: a resume (here by the daemon that
    took the lapsed lease over) prunes past the limit as its parent would have."""
    one, two = pair
    forced = one.run_sync(lambda r: r.create_execution("t0", Trigger.MANUAL, for_any=True,
                                                       force_prune=True))
    plain = _queue(one, "t1")
    assert forced.force_prune and not two.run_sync(lambda r: r.get_execution(plain)).force_prune
    assert len(one.run_sync(lambda r: r.coordinate(free=2, mine=(), lease=0.3)).claimed) == 2
    time.sleep(0.5)
    found = two.run_sync(lambda r: r.coordinate(free=0, mine=(), lease=30))
    resumed = {r.parent_id: r.force_prune for r in found.resumed}
    assert resumed == {forced.id: True, plain: False}
