"""Executions written through the store's own API (no real sync): one of 100,000 tags, one
whose names and messages carry control characters.

The big one is far over gRPC's 4 MiB in one message (each result carries a digest, many a
reason), so any client that reads it whole breaks; every 10th tag failed, so retry has something
to do.
"""

from __future__ import annotations

from pathlib import Path

from regsync.daemon.engine.events import Counters, LogEvent, Outcome, TagResult
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule
from regsync.daemon.store.db import Database
from regsync.daemon.store.records import ExecutionStatus, Trigger
from regsync.daemon.store.repo import Repo

TAGS = 100_000
CLOSED = "http://127.0.0.1:9"  # nothing listens: a retry fails at once, contacting no one


def result(i: int) -> TagResult:
    if i % 10 == 9:
        return TagResult("big", f"1.{i}", Outcome.FAILED, reason="manifest unknown (404)",
                         error_kind="not-found")
    return TagResult("big", f"1.{i}", Outcome.COPIED, digest=f"sha256:{i:064x}")


def log_line(i: int) -> LogEvent:
    """One line per tag, as a run that logs each tag's outcome writes (~100 bytes each)."""
    return LogEvent("info", f"line {i}: 1.{i} copied to dst/b as sha256:{i:064x}"[:100],
                    rule="big", time=1_714_564_800.0 + i / 1000)


def seed_big_execution(db_path: Path, count: int = TAGS) -> int:
    """Registries src and dst, task "big" (src/a -> dst/b) and one failed execution of `count`
    tags, with a log line for each; returns its id."""

    def seed(repo: Repo) -> int:
        for name in ("src", "dst"):
            repo.create_registry(RegistrySettings(name, CLOSED))
        repo.create_task(SyncRule("big", Endpoint("src", "a"), Endpoint("dst", "b")))
        execution = repo.create_execution("big", Trigger.MANUAL)
        repo.mark_running(execution.id)
        results = [result(i) for i in range(count)]
        for start in range(0, count, 1000):  # as the executor's flushes do, a batch at a time
            repo.add_results(execution.id, results[start:start + 1000])
            repo.add_logs(execution.id, [log_line(i) for i in range(start, start + 1000)])
        failed = sum(r.outcome is Outcome.FAILED for r in results)
        counters = Counters(tags_total=count, tags_copied=count - failed, tags_failed=failed)
        repo.finish_execution(execution.id, ExecutionStatus.FAILED, counters,
                              f"{failed} failed; first: manifest unknown (404)")
        return execution.id

    with Database.open(db_path) as db:
        return db.run_sync(seed)


#: what a hostile registry may have put in a tag, an error and a log line: clear the screen,
#: a forged log line after a newline, a carriage return, a bidi override
HOSTILE_TAG = "1.0\x1b[2J"
HOSTILE_REASON = "denied\r\nINFO forged line\x1b]8;;http://evil.example\x07click\u202e"
HOSTILE_LOG = "listing src/a: \x1b[31mred\x1b[0m\x9b1m"


def seed_hostile_execution(db_path: Path) -> int:
    """Task "hostile" with one failed execution whose tag, reason, error and log line carry
    control characters; returns its id."""

    def seed(repo: Repo) -> int:
        for name in ("src", "dst"):
            repo.create_registry(RegistrySettings(name, CLOSED))
        repo.create_task(SyncRule("hostile", Endpoint("src", "a"), Endpoint("dst", "b")))
        execution = repo.create_execution("hostile", Trigger.MANUAL)
        repo.mark_running(execution.id)
        repo.add_results(execution.id, [TagResult("hostile", HOSTILE_TAG, Outcome.FAILED,
                                                  reason=HOSTILE_REASON, error_kind="auth")])
        repo.add_logs(execution.id, [LogEvent("warning", HOSTILE_LOG, rule="hostile")])
        counters = Counters(tags_total=1, tags_failed=1)
        repo.finish_execution(execution.id, ExecutionStatus.FAILED, counters,
                              f"1 failed; first: {HOSTILE_REASON}")
        return execution.id

    with Database.open(db_path) as db:
        return db.run_sync(seed)
