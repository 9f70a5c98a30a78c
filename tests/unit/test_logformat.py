"""JSON log lines and the execution context stamped on them: pure."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from regsync.daemon.engine.events import Counters, LogEvent
from regsync.daemon.runtime.logformat import (
    ExecutionContext,
    ExecutionLog,
    JsonFormatter,
    current_execution,
)
from regsync.daemon.runtime.watch import WatchItem
from regsync.daemon.store.records import ExecutionRecord, ExecutionStatus, Trigger


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("regsync.x", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_one_object_a_line_with_the_execution_from_the_context() -> None:
    formatter, stamp = JsonFormatter(), ExecutionContext()
    outside = _record("a\nb %s", "\u00e9")
    stamp.filter(outside)
    line = formatter.format(outside)
    assert "\n" not in line
    assert json.loads(line) | {"time": ""} == {
        "time": "", "level": "warning", "logger": "regsync.x", "message": "a\nb \u00e9"}
    token = current_execution.set(("nginx", 42))
    try:
        inside = _record("retrying")
        stamp.filter(inside)
        explicit = _record("other", task="redis", execution_id=7)  # an explicit one wins
        stamp.filter(explicit)
    finally:
        current_execution.reset(token)
    assert json.loads(formatter.format(inside))["execution_id"] == 42
    assert json.loads(formatter.format(inside))["task"] == "nginx"
    assert json.loads(formatter.format(explicit))["task"] == "redis"


def test_exceptions_are_kept_in_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "crashed", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["exception"].startswith("Traceback") and "ValueError: boom" in line["exception"]


def test_execution_log_lines() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("test.execution")
    logger.addHandler(Keep())
    logger.setLevel(logging.DEBUG)
    listen = ExecutionLog(logger)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    running = ExecutionRecord(3, "app", Trigger.CRON, ExecutionStatus.RUNNING, now)
    failed = ExecutionRecord(3, "app", Trigger.CRON, ExecutionStatus.FAILED, now, now,
                             Counters(tags_copied=1, tags_failed=2, bytes_copied=10), "2 failed")
    listen(WatchItem(3, "app", execution=running))
    listen(WatchItem(3, "app", log=LogEvent("info", "listing")))  # info: not repeated
    listen(WatchItem(3, "app", log=LogEvent("error", "1.0: denied")))
    listen(WatchItem(3, "app", execution=failed))
    assert [(r.levelname, r.getMessage()) for r in seen] == [
        ("INFO", "execution 3 of task 'app' started (cron)"),
        ("ERROR", "task 'app': 1.0: denied"),
        ("WARNING", ("execution 3 of task 'app' failed: 1 copied, 0 unchanged, 2 failed, "
                    "10 bytes; 2 failed")),
    ]
    assert all((r.task, r.execution_id) == ("app", 3) for r in seen)  # type: ignore[attr-defined]
