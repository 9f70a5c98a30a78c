"""Read-only summaries of the execution history for monitoring (metrics, staleness, trends).

Plain functions run on the DB thread like `Repo`'s methods (`db.run(lambda repo: f())`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from peewee import fn

from .models import Execution, Task, from_epoch
from .records import ExecutionStatus


def last_successes() -> dict[str, datetime]:
    """When each task's newest succeeded execution finished (tasks that never succeeded: absent)."""
    rows = (
        Task.select(Task.name, fn.MAX(Execution.finished).alias("last"))
        .join(Execution)
        .where(Execution.status == ExecutionStatus.SUCCEEDED.value)
        .group_by(Task.name)
        .dicts()
    )
    found = cast(Iterable[dict[str, Any]], rows) # .dicts() rows, typed by peewee as models
    return {row["name"]: from_epoch(row["last"]) for row in found if row["last"] is not None}


def ended_since(since: datetime) -> list[tuple[datetime, ExecutionStatus, int]]:
    """(finished, status, bytes copied) of every execution that ended at or after `since`."""
    rows = (Execution.select(Execution.finished, Execution.status, Execution.bytes_copied)
            .where(Execution.finished >= since.timestamp()).tuples())
    found = cast(Iterable[tuple[float, str, int]], rows)
    return [(from_epoch(finished), ExecutionStatus(status), int(copied))
            for finished, status, copied in found]
