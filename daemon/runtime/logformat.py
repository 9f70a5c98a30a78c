"""The daemon's log lines: human (the default) or `--log-format json`, one object a line.

JSON lines are for journald and log shippers: {"time", "level", "logger", "message"}, plus
"task" and "execution_id" for every line written while an execution runs (a context variable
the executor sets, which trio copies into each task the execution starts), plus "exception"
with the traceback when there is one. `ExecutionLog` also writes each execution's start, end and
warnings to the log, so a shipper sees runs without reading the store.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from ..base.safetext import EscapingFormatter
from .watch import WatchItem

#: (task, execution id) of the execution the current trio task works for
current_execution: ContextVar[tuple[str, int] | None] = ContextVar(
    "regsync_execution", default=None)

HUMAN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("human", "json")


class ExecutionContext(logging.Filter):
    """Stamps records with the running execution's task and id (from `current_execution`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "execution_id"):
            current = current_execution.get()
            if current is not None:
                record.task, record.execution_id = current
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("task", "execution_id"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str, level: int) -> None:
    """Set up the root logger on stderr in `log_format` (one of FORMATS)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ExecutionContext())
    handler.setFormatter(JsonFormatter() if log_format == "json" else EscapingFormatter(HUMAN))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class ExecutionLog:
    """A hub listener: an execution's start and end, and its warnings and errors, as log lines."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("regsync.execution")

    def __call__(self, item: WatchItem) -> None:
        extra = {"task": item.task, "execution_id": item.execution_id}
        record = item.execution
        if record is not None:
            if record.status.value == "running":
                self._log.info("execution %d of task %r started (%s)", record.id, record.task,
                               record.trigger.value, extra=extra)
            elif not record.status.active:
                c = record.counters
                level = logging.INFO if record.status.value == "succeeded" else logging.WARNING
                self._log.log(level, "execution %d of task %r %s: %d copied, %d unchanged, "
                              "%d failed, %d bytes%s", record.id, record.task,
                              record.status.value, c.tags_copied, c.tags_skipped, c.tags_failed,
                              c.bytes_copied, f"; {record.error}" if record.error else "",
                              extra=extra)
        event = item.log
        if event is not None and event.level in ("warning", "error"):
            self._log.log(logging.getLevelName(event.level.upper()), "task %r: %s", item.task,
                          event.message, extra=extra)
