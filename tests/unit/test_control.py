"""The control layer's own work per operation: what it asks the store, and nothing more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from regsync.daemon.control.operations import Control
from regsync.daemon.runtime.executor import Executor
from regsync.daemon.runtime.hub import Hub
from regsync.daemon.runtime.scheduler import Scheduler
from regsync.daemon.settings import Endpoint, GlobalSettings, RegistrySettings, SyncRule
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
        self.forced: list[bool] = []

    async def start(self, task: str, trigger: Trigger, *, parent_id: int | None = None,
                    except_tags: object = None, force_prune: bool = False) -> ExecutionRecord:
        self.started.append((task, trigger))
        self.forced.append(force_prune)
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
    await control.run_task("nginx", force_prune=True)  # RunTask's force_prune, passed on
    assert executor.forced == [False, True]


async def test_a_resume_after_a_crash_keeps_the_force_of_the_run_it_resumes(tmp_path: Path) -> None:
    """A forced run (RunTask's force_prune) cut by a crash resumes forced; it lost the force."""
    executor = StartingExecutor()
    with Database.open(str(tmp_path / "store.db")) as db:
        def seed(repo: Any) -> list[int]:
            repo.create_registry(RegistrySettings("src", "https://src.example"))
            for name in ("forced", "plain"):
                repo.create_task(SyncRule(name, Endpoint("src", name), Endpoint("src", "m/" + name)))
            ids = [repo.create_execution("forced", Trigger.MANUAL, force_prune=True).id,
                   repo.create_execution("plain", Trigger.MANUAL).id]
            for id in ids:
                repo.mark_running(id)
            return ids

        db.run_sync(seed)
        control = Control(db, cast(Executor, executor), cast(Scheduler, None), cast(Hub, None),
                          global_settings=GlobalSettings, store_location=":memory:")
        await control.resume_interrupted()
    assert dict(zip((t for t, _ in executor.started), executor.forced, strict=True)) == {
        "forced": True, "plain": False}
    assert {trigger for _, trigger in executor.started} == {Trigger.RESUME}
