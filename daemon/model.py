"""The daemon's records: what the store keeps and the control plane serves.

Specs reuse the config's value objects (`RegistrySettings`, `SyncRule`), so a registry or task
created through the API is validated by exactly the rules that validate the YAML file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from .config import NotificationSettings, RegistrySettings, SyncRule
from .engine.events import Counters


class Trigger(str, Enum):
    MANUAL = "manual"
    CRON = "cron"
    RETRY = "retry"  # only the failed tags of a parent execution
    RESUME = "resume"  # the tags an interrupted parent execution did not finish


class ExecutionStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"

    @property
    def active(self) -> bool:
        return self in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    """A stored registry. `settings.password` may be a `${VAR}` reference, kept as written."""

    settings: RegistrySettings
    used_by: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def password_set(self) -> bool:
        return bool(self.settings.password)


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    id: int
    task: str
    trigger: Trigger
    status: ExecutionStatus
    started: datetime
    finished: datetime | None = None
    counters: Counters = field(default_factory=Counters)
    error: str = ""
    parent_id: int | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    rule: SyncRule
    next_run: datetime | None = None
    last_execution: ExecutionRecord | None = None
    running: bool = False

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass(frozen=True, slots=True)
class ExecutionQuery:
    task: str | None = None
    statuses: tuple[ExecutionStatus, ...] = ()
    limit: int = 50
    before_id: int | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    tasks_total: int = 0
    tasks_enabled: int = 0
    running: int = 0
    succeeded_today: int = 0
    failed_today: int = 0
    succeeded_total: int = 0
    failed_total: int = 0
    executions_total: int = 0
    bytes_copied_today: int = 0
    registries_total: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionVerdict:
    """The answer of "test connection": the request worked; `ok` says whether the registry does."""

    ok: bool
    reachable: bool
    auth_ok: bool
    api_version: str = ""
    message: str = ""
    error_kind: str = ""
    latency_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ApplyResult:
    registries_created: tuple[str, ...] = ()
    registries_updated: tuple[str, ...] = ()
    tasks_created: tuple[str, ...] = ()
    tasks_updated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    task: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    version: str
    uptime_seconds: float
    running: tuple[ExecutionRecord, ...]
    next_runs: tuple[ScheduledRun, ...]
    store: str


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How a webhook's last delivery went (all attempts of one event)."""

    event: str
    time: datetime
    ok: bool
    code: int = 0  # the receiver's last HTTP status; 0 when none answered
    error: str = ""  # why it failed, ready for a user (no secret, no response body)
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """A stored webhook. `settings.secret` never leaves the daemon: replies say `secret_set`."""

    settings: NotificationSettings
    last: DeliveryResult | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def secret_set(self) -> bool:
        return bool(self.settings.secret)


def counters_from(values: Mapping[str, int]) -> Counters:
    """Counters from a mapping with its field names (store rows, JSON)."""
    return Counters(**{k: int(v) for k, v in values.items() if k in Counters.__dataclass_fields__})
