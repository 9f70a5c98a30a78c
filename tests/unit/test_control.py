"""The control layer's own work per operation: what it asks the store, and nothing more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from regsync.daemon.control.operations import Control
from regsync.daemon.runtime.executor import Executor
from regsync.daemon.runtime.hub import Hub
from regsync.daemon.runtime.scheduler import Scheduler
from regsync.daemon.settings import GlobalSettings
from regsync.daemon.store.db import Database
from regsync.daemon.store.records import ExecutionRecord, ExecutionStatus, Trigger


class CountingStore:
    """Counts the operations the control layer itself sends to the store."""

    def __init__(self) -> None:
        self.operations = 0

    async def run(self, operation: Callable[[Any], Any]) -> Any:
        self.operations += 1
        raise AssertionError("this operation should not need the store")


class StartingExecutor:
    """Stands in for the executor, whose `create_execution` reads the task (NOT_FOUND there)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, Trigger]] = []

    async def start(self, task: str, trigger: Trigger) -> ExecutionRecord:
        self.started.append((task, trigger))
        return ExecutionRecord(1, task, trigger, ExecutionStatus.QUEUED, datetime.now(UTC))


async def test_run_task_reads_the_task_once() -> None:
    """RunTask read the task, then the executor's create_execution read it again."""
    store, executor = CountingStore(), StartingExecutor()
    control = Control(cast(Database, store), cast(Executor, executor),
                      cast(Scheduler, None), cast(Hub, None),
                      global_settings=GlobalSettings, store_location=":memory:")
    record = await control.run_task("nginx")
    assert record.task == "nginx" and executor.started == [("nginx", Trigger.MANUAL)]
    assert store.operations == 0  # the executor's one store operation reads it
