"""The store's cost per tag result, SQLite vs PostgreSQL. Not a test: prints figures.

    .venv/bin/python bench/bench_store.py [--results 5000]

Each write is shaped like the executor's flush (executor.py `_flush`): a batch of tag results,
one log line per result, and the execution's counters, in one operation through the DB thread.
Batch 1 is the worst case (a flush per tag); the executor flushes every 0.5 s, so a busy run
writes tens to hundreds of results per flush. PostgreSQL is a throwaway local cluster
(tests/support/postgres.py: loopback TCP, fsync off), so the figures are the client-side and
protocol cost, not a durable server's commit latency.

Then, on PostgreSQL, the cost of one coordinator round (store/leases.py: renew the leases, look
for stops, lapsed leases and queued work) for a daemon running 0, 10 and 100 executions: each
daemon on a shared store pays it about once a second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from regsync.daemon.engine.events import Counters, LogEvent, Outcome, TagResult
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule
from regsync.daemon.store import Database, Repo
from regsync.daemon.store.records import Trigger
from support.postgres import postgres_cluster

BATCHES = (1, 50, 500)


def measure(url: str, total: int, batch: int) -> float:
    """Milliseconds per tag result for `total` results written `batch` at a time."""
    with Database.open(url) as db:

        def seed(repo: Repo) -> int:
            repo.create_registry(RegistrySettings("src", "https://src.example"))
            repo.create_registry(RegistrySettings("dst", "https://dst.example"))
            repo.create_task(SyncRule("t", Endpoint("src", "a"), Endpoint("dst", "a")))
            return repo.create_execution("t", Trigger.MANUAL).id

        id = db.run_sync(seed)
        start = time.perf_counter()
        for first in range(0, total, batch):
            results = [TagResult("t", f"1.{n}", Outcome.COPIED, digest="sha256:" + "a" * 64)
                       for n in range(first, min(first + batch, total))]
            logs = [LogEvent("info", f"copied {r.tag}", rule="t") for r in results]

            def write(repo: Repo, results: list[TagResult] = results,
                      logs: list[LogEvent] = logs) -> None:
                repo.add_results(id, results)
                repo.add_logs(id, logs)
                repo.update_counters(id, Counters(tags_copied=len(results)))

            db.run_sync(write)
        return (time.perf_counter() - start) / total * 1000


def coordinate_ms(url: str, running: int, rounds: int = 200) -> float:
    """Milliseconds per coordinator round with `running` executions held by this daemon."""
    with Database.open(url) as db:

        def seed(repo: Repo) -> list[int]:
            repo.register_daemon("bench", 1)
            repo.create_registry(RegistrySettings("src", "https://src.example"))
            repo.create_registry(RegistrySettings("dst", "https://dst.example"))
            for n in range(running):
                repo.create_task(SyncRule(f"t{n}", Endpoint("src", "a"), Endpoint("dst", "a")))
                repo.create_execution(f"t{n}", Trigger.MANUAL, for_any=True)
            return [c.record.id for c in repo.coordinate(free=running, mine=(), lease=30).claimed]

        mine = db.run_sync(seed)
        start = time.perf_counter()
        for _ in range(rounds):
            db.run_sync(lambda repo: repo.coordinate(free=0, mine=mine, lease=30))
        return (time.perf_counter() - start) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=5000)
    args = parser.parse_args()
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp, postgres_cluster() as cluster:
        for batch in BATCHES:
            total = min(args.results, 1000) if batch == 1 else args.results
            sqlite = measure(f"{tmp}/b{batch}.db", total, batch)
            pg = measure(cluster.url(cluster.create_database()), total, batch)
            rows += [("sqlite", batch, sqlite), ("postgresql", batch, pg)]
    print(f"{'engine':<12}{'batch':>6}{'ms/result':>12}")
    for engine, batch, ms in rows:
        print(f"{engine:<12}{batch:>6}{ms:>12.3f}")
    with postgres_cluster() as cluster:
        for running in (0, 10, 100):
            ms = coordinate_ms(cluster.url(cluster.create_database()), running)
            print(f"coordinator round, {running:>3} running: {ms:.2f} ms")


if __name__ == "__main__":
    main()
