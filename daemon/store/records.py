"""The daemon's records: what the store keeps and the control plane serves.

Specs reuse the config's value objects (`RegistrySettings`, `SyncRule`), so a registry or task
created through the API is validated by exactly the rules that validate the YAML file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from ..engine.events import Counters, LogEvent, TagResult
from ..settings import NotificationSettings, RegistrySettings, SyncRule


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
    """A stored registry. `settings.password` is in the store's form: `${VAR}` is a reference
    (only a config file the daemon read itself writes one), `$$` a literal "$" (see runtime/task_inputs.py).
    `password_dropped`: an update moved the registry to another url or user and no password came
    with it, so the stored one went (a password stays bound to where it was given)."""

    settings: RegistrySettings
    used_by: tuple[str, ...] = ()
    password_dropped: bool = False

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def password_set(self) -> bool:
        return bool(self.settings.password)


def password_stays(old: RegistrySettings, new: RegistrySettings) -> bool:
    """Whether a stored password may stay with an edit that sends none: only for the same url
    (scheme, host and port) and the same user. Anything else would hand it to a host, or log in
    as a user, its owner never gave it for."""
    return (old.url, old.username) == (new.url, new.username)


@dataclass(frozen=True, slots=True)
class ScopeCounts:
    """A glob execution's repositories, once its catalog walk ended: how many it matched, and
    how many of them the last execution that walked the whole catalog did not (new), and how
    many that one matched and this one did not (removed: deleted, renamed or now excluded)."""

    matched: int
    new: int = 0
    removed: int = 0


@dataclass(frozen=True, slots=True)
class ScopeChanges:
    """The names behind ScopeCounts' new and removed, each list cut at a page's bound."""

    new: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


#: names of new or removed repositories an execution's detail carries (the counts say the rest)
SCOPE_CHANGES_MAX = 100


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
    #: the daemon that runs (or ran) it, as `host pid N (#id)`; "" while no daemon claimed it
    daemon: str = ""
    daemon_id: int | None = None
    #: RunTask's force_prune: past the rule's prune_max, for this run and its resumes
    force_prune: bool = False
    scope: ScopeCounts | None = None  # glob executions whose catalog walk ended


@dataclass(frozen=True, slots=True)
class TaskRecord:
    rule: SyncRule
    next_run: datetime | None = None
    last_execution: ExecutionRecord | None = None
    running: bool = False

    @property
    def name(self) -> str:
        return self.rule.name


#: per-tag results in one page when a client does not say, and at most (a reply stays far below
#: gRPC's 4 MiB: `RESULTS_PAGE_BYTES` cuts a page of long reasons shorter)
RESULTS_PAGE_DEFAULT = 1000
RESULTS_PAGE_MAX = 5000
RESULTS_PAGE_BYTES = 1024 * 1024
LOGS_PAGE_MAX = 5000  # log lines in one page, whatever a client asks (cut by the same bytes)


@dataclass(frozen=True, slots=True)
class ResultsPage:
    """One page of an execution's per-tag results, in the order they were recorded."""

    results: tuple[TagResult, ...] = ()
    #: pass as `after` for the next page; None when this page is the last
    next_after: int | None = None
    #: every result of the execution, over all pages
    total: int = 0
    #: a glob execution's new and removed repositories (on the first page only)
    changes: ScopeChanges = ScopeChanges()


@dataclass(frozen=True, slots=True)
class LogsPage:
    """Log lines of an execution from an offset on, and how many it has in all."""

    lines: tuple[LogEvent, ...] = ()
    total: int = 0


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
    passwords_dropped: tuple[str, ...] = ()  # registries whose stored password the apply removed


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
    daemon: str = ""  # this daemon, as executions name it
    fires_schedules: bool = True  # False on a shared store's daemons but the leader


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
