"""A glob execution's scope in the store, on both engines: the repositories it matched, and what
is new or removed against the last execution of its task that walked the whole catalog."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from regsync.daemon.engine.events import Counters
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule
from regsync.daemon.store import Database, Repo
from regsync.daemon.store.records import ExecutionStatus, ScopeChanges, ScopeCounts, Trigger


@pytest.fixture
def db(store_url: str) -> Iterator[Database]:
    with Database.open(store_url) as database:

        def seed(repo: Repo) -> None:
            repo.create_registry(RegistrySettings("src", "http://127.0.0.1:5000"))
            repo.create_task(SyncRule("g", Endpoint("src", "team/**"), Endpoint("src", "dr/**")))
            repo.create_task(SyncRule("other", Endpoint("src", "x/*"), Endpoint("src", "y/*")))

        database.run_sync(seed)
        yield database


def execution(db: Database, task: str, repositories: list[str], *, walked: bool = True,
              ) -> tuple[int, ScopeCounts | None]:
    """One execution of `task` that matched `repositories` (in two flushes, a name twice)."""

    def run(repo: Repo) -> tuple[int, ScopeCounts | None]:
        record = repo.create_execution(task, Trigger.MANUAL)
        repo.add_repositories(record.id, repositories[:1])
        repo.add_repositories(record.id, repositories)
        counts = repo.close_scope(record.id) if walked else None
        repo.finish_execution(record.id, ExecutionStatus.SUCCEEDED, Counters())
        return record.id, counts

    return db.run_sync(run)


def test_new_and_removed_repositories_against_the_last_whole_scope(db: Database) -> None:
    first, counts = execution(db, "g", ["team/a", "team/b", "team/c"])
    assert counts == ScopeCounts(matched=3, new=3)  # nothing to compare with: all new
    execution(db, "other", ["x/z"])  # another task's scope is not this one's
    second, counts = execution(db, "g", ["team/a", "team/c", "team/d"])
    assert counts == ScopeCounts(matched=3, new=1, removed=1)
    assert db.run_sync(lambda r: r.scope_changes(second)) == ScopeChanges(
        new=("team/d",), removed=("team/b",))
    assert db.run_sync(lambda r: r.get_execution(second)).scope == counts
    # a walk that broke off closes nothing, and the next compares with the last whole one
    broken, _ = execution(db, "g", ["team/a"], walked=False)
    assert db.run_sync(lambda r: r.get_execution(broken)).scope is None
    _, counts = execution(db, "g", ["team/a", "team/c", "team/d", "team/e"])
    assert counts == ScopeCounts(matched=4, new=1, removed=0)
    # removed once is not removed again, nor new when it comes back
    fourth, counts = execution(db, "g", ["team/b"])
    assert db.run_sync(lambda r: r.scope_changes(fourth)) == ScopeChanges(
        new=("team/b",), removed=("team/a", "team/c", "team/d", "team/e"))
    _, counts = execution(db, "g", ["team/b"])
    assert counts == ScopeCounts(matched=1)
    assert db.run_sync(lambda r: r.get_execution(first)).scope == ScopeCounts(3, 3, 0)


def test_the_changes_listed_are_bounded_and_the_counts_are_not(db: Database) -> None:
    names = [f"team/r{n:04}" for n in range(250)]
    first, counts = execution(db, "g", names)
    assert counts == ScopeCounts(matched=250, new=250)
    changes = db.run_sync(lambda r: r.scope_changes(first, most=100))
    assert changes.new == tuple(names[:100]) and changes.removed == ()
    _, counts = execution(db, "g", [])
    assert counts == ScopeCounts(matched=0, removed=250)
