"""A finished execution of 100,000 tags, written through the store's own API (no real sync).

Far over gRPC's 4 MiB in one message (each result carries a digest and many a reason), so any
client that reads it whole breaks; every 10th tag failed, so retry has something to do.
"""

from __future__ import annotations

from pathlib import Path

from regsync.daemon.config import Endpoint, RegistrySettings, SyncRule
from regsync.daemon.engine.events import Counters, Outcome, TagResult
from regsync.daemon.model import ExecutionStatus, Trigger
from regsync.daemon.store.db import Database
from regsync.daemon.store.repo import Repo

TAGS = 100_000
CLOSED = "http://127.0.0.1:9"  # nothing listens: a retry fails at once, contacting no one


def result(i: int) -> TagResult:
    if i % 10 == 9:
        return TagResult("big", f"1.{i}", Outcome.FAILED, reason="manifest unknown (404)",
                         error_kind="not-found")
    return TagResult("big", f"1.{i}", Outcome.COPIED, digest=f"sha256:{i:064x}")


def seed_big_execution(db_path: Path, count: int = TAGS) -> int:
    """Registries src and dst, task "big" (src/a -> dst/b) and one failed execution of `count`
    tags; returns its id."""

    def seed(repo: Repo) -> int:
        for name in ("src", "dst"):
            repo.create_registry(RegistrySettings(name, CLOSED))
        repo.create_task(SyncRule("big", Endpoint("src", "a"), Endpoint("dst", "b")))
        execution = repo.create_execution("big", Trigger.MANUAL)
        repo.mark_running(execution.id)
        results = [result(i) for i in range(count)]
        for start in range(0, count, 1000):  # as the executor's flushes do, a batch at a time
            repo.add_results(execution.id, results[start:start + 1000])
        failed = sum(r.outcome is Outcome.FAILED for r in results)
        counters = Counters(tags_total=count, tags_copied=count - failed, tags_failed=failed)
        repo.finish_execution(execution.id, ExecutionStatus.FAILED, counters,
                              f"{failed} failed; first: manifest unknown (404)")
        return execution.id

    with Database.open(db_path) as db:
        return db.run_sync(seed)
