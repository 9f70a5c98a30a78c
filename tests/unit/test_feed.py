"""The store feed (feed.py): what another daemon's execution did, read from the shared store."""

from __future__ import annotations

from regsync.daemon.engine.events import Counters, LogEvent, Outcome, TagResult
from regsync.daemon.runtime.feed import read_news
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule
from regsync.daemon.store import Database, Repo
from regsync.daemon.store.records import ExecutionStatus, Trigger


def _seed(repo: Repo) -> int:
    repo.register_daemon("host-1", 1)
    repo.create_registry(RegistrySettings("src", "https://src.example"))
    repo.create_registry(RegistrySettings("dst", "https://dst.example"))
    for name in ("a", "b"):
        repo.create_task(SyncRule(name, Endpoint("src", name), Endpoint("dst", name)))
    repo.create_execution("a", Trigger.MANUAL, for_any=True)
    (claim,) = repo.coordinate(free=1, mine=(), lease=30).claimed
    repo.add_results(claim.record.id, [TagResult("a", "old", Outcome.COPIED)])
    repo.add_logs(claim.record.id, [LogEvent("info", "before anyone watched")])
    return claim.record.id


def test_another_daemons_run_is_followed_from_where_the_store_is_then_to_its_end(
    pg_url: str,
) -> None:
    with Database.open(pg_url) as one, Database.open(pg_url) as two:
        id = one.run_sync(_seed)
        items, seen = two.run_sync(lambda r: read_news(r, (), {}))
        assert [(i.execution_id, i.execution and i.execution.status) for i in items] == [
            (id, ExecutionStatus.RUNNING)]  # the state now; earlier lines are GetLogs'
        assert list(seen) == [id]

        def progress(repo: Repo) -> None:
            repo.add_results(id, [TagResult("a", "1.0", Outcome.COPIED)])
            repo.add_logs(id, [LogEvent("info", "copied 1.0")])
            repo.update_counters(id, Counters(tags_copied=2))

        one.run_sync(progress)
        items, seen = two.run_sync(lambda r: read_news(r, (), seen))
        assert [i.tag.tag for i in items if i.tag] == ["1.0"]
        assert [i.log.message for i in items if i.log] == ["copied 1.0"]
        assert [i.progress.tags_copied for i in items if i.progress] == [2]
        assert two.run_sync(lambda r: read_news(r, (), seen))[0] == []  # nothing new

        one.run_sync(lambda r: r.finish_execution(id, ExecutionStatus.SUCCEEDED, Counters()))
        items, seen = two.run_sync(lambda r: read_news(r, (), seen))
        assert [i.execution.status for i in items if i.execution] == [ExecutionStatus.SUCCEEDED]
        assert seen == {}
        # a watched execution that ended before the feed saw it: its end, once
        items, _ = two.run_sync(lambda r: read_news(r, (), {}, watched=[id, 999]))
        assert [i.execution.status for i in items if i.execution] == [ExecutionStatus.SUCCEEDED]
        # this daemon's own runs are the executor's to tell
        assert one.run_sync(lambda r: read_news(r, [id], {}, watched=[id]))[0] == []
