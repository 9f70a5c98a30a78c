"""The service layer's contract: what the gRPC servicers call, in trio, with domain values.

Servicers translate protobuf to these calls and errors to status codes, nothing more (STYLE.md:
thin like crane's commands). Every method raises only `daemon.errors` types:
`ConfigError` (invalid input, naming the field), `UnknownItemError`, `DuplicateItemError`,
`ConflictError`, or a registry error where the registry is contacted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from .config import RegistrySettings, SyncRule
from .engine.copy import TagPlan
from .engine.events import Counters, LogEvent, TagResult
from .engine.filters import TagSelection
from .engine.scope_preview import ScopePreview
from .model import (
    RESULTS_PAGE_DEFAULT,
    ApplyResult,
    ConnectionVerdict,
    DaemonStatus,
    ExecutionQuery,
    ExecutionRecord,
    LogsPage,
    RegistryRecord,
    ResultsPage,
    Stats,
    TaskRecord,
)


@dataclass(frozen=True, slots=True)
class WatchItem:
    """One event for watchers; exactly one of the optional fields is set."""

    execution_id: int
    task: str
    execution: ExecutionRecord | None = None
    tag: TagResult | None = None
    log: LogEvent | None = None
    progress: Counters | None = None
    current_tag: str = ""


class ControlPlane(Protocol):
    # registries
    async def create_registry(self, settings: RegistrySettings) -> RegistryRecord: ...
    async def list_registries(self) -> list[RegistryRecord]: ...
    async def get_registry(self, name: str) -> RegistryRecord: ...
    async def update_registry(
        self, settings: RegistrySettings, *, keep_password: bool
    ) -> RegistryRecord: ...
    async def delete_registry(self, name: str) -> None: ...
    async def test_registry(self, name: str) -> ConnectionVerdict: ...

    # tasks
    async def create_task(self, rule: SyncRule) -> TaskRecord: ...
    async def list_tasks(self) -> list[TaskRecord]: ...
    async def get_task(self, name: str) -> TaskRecord: ...
    async def update_task(self, rule: SyncRule) -> TaskRecord: ...
    async def delete_task(self, name: str) -> None: ...
    async def run_task(self, name: str) -> ExecutionRecord: ...
    async def stop_task(self, name: str) -> ExecutionRecord: ...
    async def set_task_enabled(self, name: str, enabled: bool) -> TaskRecord: ...
    async def plan_task(self, name: str) -> tuple[TagSelection, list[TagPlan]]: ...
    async def preview_tags(
        self, rule: SyncRule, tags: Sequence[str] | None
    ) -> TagSelection: ...
    async def preview_repositories(self, rule: SyncRule, limit: int) -> ScopePreview: ...

    # executions
    async def list_executions(
        self, query: ExecutionQuery
    ) -> tuple[list[ExecutionRecord], int | None]: ...
    async def get_execution(
        self, id: int, *, after: int = 0, limit: int = RESULTS_PAGE_DEFAULT
    ) -> tuple[ExecutionRecord, ResultsPage]: ...
    async def get_logs(self, id: int, *, offset: int, limit: int) -> LogsPage: ...
    async def retry_failed(self, id: int) -> ExecutionRecord: ...

    # the daemon
    async def stats(self) -> Stats: ...
    async def status(self) -> DaemonStatus: ...
    async def apply(self, text: str, *, source: str) -> ApplyResult: ...
    def watch(
        self, execution_id: int | None, *, logs: bool
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchItem]]: ...
