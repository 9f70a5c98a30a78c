"""Which daemon runs what (schema 4): a second daemon on a shared PostgreSQL store leaves the
first one's live executions alone and takes over those of a daemon that is gone; two daemons
creating an execution of one task at once cannot both win."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psycopg2
import pytest
from regsync.daemon.base.errors import ConflictError
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule
from regsync.daemon.store import Database, Repo
from regsync.daemon.store.models import DaemonRow, Execution
from regsync.daemon.store.records import ExecutionStatus, Trigger


def _seed(repo: Repo) -> None:
    repo.create_registry(RegistrySettings("src", "https://src.example"))
    repo.create_registry(RegistrySettings("dst", "https://dst.example"))
    for name in ("a", "b"):
        repo.create_task(SyncRule(name, Endpoint("src", name), Endpoint("dst", name)))


def _owner(db: Database, id: int) -> int | None:
    owner = db.run_sync(lambda _: getattr(Execution.get_by_id(id), "daemon_id"))  # noqa: B009
    return None if owner is None else int(owner)


@pytest.fixture
def first(store_url: str) -> Iterator[Database]:
    with Database.open(store_url) as db:
        db.run_sync(_seed)
        yield db


def test_a_daemon_records_itself_and_its_executions(first: Database) -> None:
    me = first.run_sync(lambda r: r.register_daemon("host-1", 4242))
    execution = first.run_sync(lambda r: r.create_execution("a", Trigger.MANUAL))
    assert _owner(first, execution.id) == me
    first.run_sync(lambda r: r.heartbeat())
    first.run_sync(lambda r: r.daemon_stopped())
    row = first.run_sync(lambda _: DaemonRow.get_by_id(me))
    assert (row.host, row.pid) == ("host-1", 4242) and row.stopped is not None


def test_a_second_daemon_leaves_a_live_daemons_runs_and_takes_a_dead_ones(pg_url: str) -> None:
    with Database.open(pg_url) as one:
        one.run_sync(_seed)
        one.run_sync(lambda r: r.register_daemon("host-1", 1))
        live = one.run_sync(lambda r: r.create_execution("a", Trigger.MANUAL))
        one.run_sync(lambda r: r.mark_running(live.id))
        with Database.open(pg_url) as two:
            two.run_sync(lambda r: r.register_daemon("host-2", 2))
            orphan = two.run_sync(lambda r: r.create_execution("b", Trigger.MANUAL))
            two.run_sync(lambda _: Execution.update(daemon=None).where(
                Execution.id == orphan.id).execute())  # as a daemon of schema 3 left it
            with Database.open(pg_url) as three:
                three.run_sync(lambda r: r.register_daemon("host-3", 3))
                taken = three.run_sync(lambda r: r.interrupt_running())
                assert [e.id for e in taken] == [orphan.id]  # one's run is live: left alone
                status = three.run_sync(lambda r: r.get_execution(live.id)).status
                assert status is ExecutionStatus.RUNNING
    # daemon one's session ended (as when its process dies): its run is now an orphan
    with Database.open(pg_url) as four:
        four.run_sync(lambda r: r.register_daemon("host-4", 4))
        # (and the orphan three interrupted, which nobody resumed in this test, stays due)
        taken = four.run_sync(lambda r: r.interrupt_running())
        assert [e.id for e in taken] == [live.id, orphan.id]
        assert all(e.status is ExecutionStatus.INTERRUPTED for e in taken)


def test_on_sqlite_every_other_daemon_is_gone(tmp_path: str) -> None:
    """The daemon's file lock (lock.py) guarantees it; the store need not ask."""
    path = f"{tmp_path}/s.db"
    with Database.open(path) as one, Database.open(path) as two:
        one.run_sync(_seed)
        one.run_sync(lambda r: r.register_daemon("h", 1))
        left = one.run_sync(lambda r: r.create_execution("a", Trigger.MANUAL))
        two.run_sync(lambda r: r.register_daemon("h", 2))
        assert [e.id for e in two.run_sync(lambda r: r.interrupt_running())] == [left.id]


def test_two_daemons_creating_one_tasks_execution_at_once_cannot_both_win(
    pg_url: str,
) -> None:
    """The other daemon's transaction (a raw connection, held open) locked the task and
    inserted its execution; ours waits for its commit, then sees it and is refused."""
    with Database.open(pg_url) as db:
        db.run_sync(_seed)
        with contextlib.closing(psycopg2.connect(pg_url)) as other, other.cursor() as cur:
            cur.execute("SELECT id FROM task WHERE name = 'a' FOR UPDATE")
            (task_id,) = cur.fetchone() or (0,)
            cur.execute("INSERT INTO execution (task_id, \"trigger\", status, started) "
                        "VALUES (%s, 'manual', 'queued', 0) RETURNING id", (task_id,))
            (theirs,) = cur.fetchone() or (0,)
            outcome: list[object] = []

            def ours() -> None:
                try:
                    outcome.append(db.run_sync(lambda r: r.create_execution("a", Trigger.MANUAL)))
                except ConflictError as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=ours)
            thread.start()
            thread.join(0.5)
            assert thread.is_alive()  # waiting on the task's row lock
            other.commit()
            thread.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], ConflictError)
        assert f"execution {theirs}" in str(outcome[0])
