"""The tables, as peewee models, and the conversions between rows and the daemon's records.

The schema itself is created by `migrations.py` in plain SQL (a migration must not change when
these classes do); the models only describe it for queries, and a test checks that both agree.
Models are unbound: `db.Database` binds them to its connection for each operation.

Times are stored as UNIX seconds (REAL, UTC) so ordering and "since midnight" are plain number
comparisons; tag lists are JSON text. Passwords are stored as written, `${VAR}` references
included: the file is created 0600 and replies never carry them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from peewee import (
    AutoField,
    BooleanField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from ..engine.events import COUNTER_FIELDS, Counters, LogEvent, Outcome, TagResult
from ..settings import Endpoint, RegistrySettings, SyncRule, TagFilter
from ..values.prunelimit import DEFAULT_LIMIT, PruneLimit, parse_prune_limit
from .records import (
    ExecutionRecord,
    ExecutionStatus,
    ScopeCounts,
    TaskRecord,
    Trigger,
    counters_from,
)


class _Base(Model):
    class Meta:
        legacy_table_names = False


class Registry(_Base):
    id = AutoField()
    name = TextField(unique=True)
    url = TextField()
    username = TextField(null=True)
    password = TextField(null=True)
    insecure = BooleanField(default=False)
    ca_file = TextField(null=True)
    qps = FloatField(null=True)


class Task(_Base):
    id = AutoField()
    name = TextField(unique=True)
    source_registry = ForeignKeyField(Registry, on_delete="RESTRICT", backref="+")
    source_repository = TextField()
    target_registry = ForeignKeyField(Registry, on_delete="RESTRICT", backref="+")
    target_repository = TextField()
    include = TextField(default="[]")
    exclude = TextField(default="[]")
    semver = TextField(null=True)
    latest = IntegerField(null=True)
    architectures = TextField(default="[]")
    platforms = TextField(default="[]")
    enabled = BooleanField(default=True)
    cron_expression = TextField(null=True)
    created = FloatField(default=0.0)  # schema 3; the scheduler's base for a first catch-up
    source_exclude = TextField(default="[]")  # schema 5: a glob task's repositories left out
    referrers = BooleanField(default=True)  # schema 7: signatures and SBOMs follow
    prune = BooleanField(default=False)  # schema 8: delete the target tags not selected
    prune_max = TextField(default="")  # schema 8: as written ("50%", "10"); "" the default
    referrer_types = TextField(default="[]")  # schema 9: only referrers of these artifact types
    last_tick = FloatField(null=True)  # schema 10: the newest cron tick fired (by any daemon)


class DaemonRow(_Base):
    """A `regsyncd serve` that opened the store (schema 4): one row per start."""

    id = AutoField()
    host = TextField()
    pid = IntegerField()
    started = FloatField()
    heartbeat = FloatField()  # refreshed while it runs: for people (leases are per execution)
    stopped = FloatField(null=True)  # set by a graceful shutdown

    class Meta:
        table_name = "daemon"


class Execution(_Base):
    id = AutoField()  # AUTOINCREMENT in the DDL: an id is never reused after a delete
    task = ForeignKeyField(Task, on_delete="CASCADE", backref="executions")
    trigger = TextField()
    status = TextField()
    started = FloatField()
    finished = FloatField(null=True)
    tags_total = IntegerField(default=0)
    tags_copied = IntegerField(default=0)
    tags_skipped = IntegerField(default=0)
    tags_failed = IntegerField(default=0)
    blobs_copied = IntegerField(default=0)
    blobs_mounted = IntegerField(default=0)
    blobs_skipped = IntegerField(default=0)
    bytes_copied = IntegerField(default=0)
    tags_deleted = IntegerField(default=0)  # schema 8: target tags pruned
    force_prune = BooleanField(default=False)  # schema 8: RunTask's force_prune, for its resumes
    referrers_copied = IntegerField(default=0)  # schema 9
    error = TextField(default="")
    parent = ForeignKeyField("self", null=True, on_delete="SET NULL", backref="children")
    daemon = ForeignKeyField(DaemonRow, null=True, on_delete="SET NULL", backref="+")  # schema 4
    lease_until = FloatField(null=True)  # schema 10: its daemon's claim lapses then
    stop_requested = BooleanField(default=False)  # schema 10: a stop asked through any daemon
    claimable = BooleanField(default=False)  # schema 10: queued for any daemon to claim
    repositories = IntegerField(null=True)  # schema 11: a glob's whole scope (None: not walked)
    repositories_new = IntegerField(default=0)
    repositories_removed = IntegerField(default=0)


class TagResultRow(_Base):
    id = AutoField()
    execution = ForeignKeyField(Execution, on_delete="CASCADE", backref="+")
    rule = TextField()
    repository = TextField(default="")  # schema 5: the source repository (a glob covers many)
    tag = TextField()
    outcome = TextField()
    digest = TextField(default="")
    reason = TextField(default="")
    error_kind = TextField(default="")

    class Meta:
        table_name = "tag_result"
        indexes = ((("execution", "repository", "tag"), True),)


class ExecutionRepositoryRow(_Base):
    """A repository a glob execution matched ("" or "new"), or one it no longer did ("removed")."""

    id = AutoField()
    execution = ForeignKeyField(Execution, on_delete="CASCADE", backref="+")
    repository = TextField()
    change = TextField(default="")

    class Meta:
        table_name = "execution_repository"
        indexes = ((("execution", "repository"), True),)


class LogRow(_Base):
    id = AutoField()
    execution = ForeignKeyField(Execution, on_delete="CASCADE", backref="+")
    seq = IntegerField()  # 0, 1, 2... per execution: `logs(offset=n)` is `seq >= n`
    time = FloatField()
    level = TextField()
    message = TextField()
    rule = TextField(default="")

    class Meta:
        table_name = "log_line"
        indexes = ((("execution", "seq"), True),)


class SchemaVersion(_Base):
    version = IntegerField(primary_key=True)


class NotificationRow(_Base):
    """A webhook and the result of its last delivery (store/notifications.py)."""

    id = AutoField()
    name = TextField(unique=True)
    url = TextField()
    events = TextField(default="[]")
    tasks = TextField(default="[]")
    secret = TextField(null=True)
    format = TextField(default="json")
    last_event = TextField(default="")
    last_time = FloatField(null=True)
    last_ok = BooleanField(default=False)
    last_code = IntegerField(default=0)
    last_error = TextField(default="")
    last_attempts = IntegerField(default=0)

    class Meta:
        table_name = "notification"


MODELS: tuple[type[Model], ...] = (
    Registry, Task, DaemonRow, Execution, TagResultRow, LogRow, SchemaVersion, NotificationRow,
    ExecutionRepositoryRow,
)


# Conversions -----------------------------------------------------------------------------------
def to_epoch(moment: datetime) -> float:
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def registry_columns(settings: RegistrySettings) -> dict[str, object]:
    """Column values for a registry row (name included)."""
    return {
        "name": settings.name,
        "url": settings.url,
        "username": settings.username,
        "password": settings.password,
        "insecure": settings.insecure,
        "ca_file": settings.ca_file,
        "qps": settings.qps,
    }


def registry_settings(row: Registry) -> RegistrySettings:
    return RegistrySettings(
        name=row.name,
        url=row.url,
        username=row.username,
        password=row.password,
        insecure=bool(row.insecure),
        ca_file=row.ca_file,
        qps=row.qps,
    )


def task_columns(rule: SyncRule, source_id: int, target_id: int) -> dict[str, object]:
    """Column values for a task row; the endpoints' registries are given as row ids."""
    return {
        "name": rule.name,
        "source_registry": source_id,
        "source_repository": rule.source.repository,
        "target_registry": target_id,
        "target_repository": rule.target.repository,
        "source_exclude": json.dumps(list(rule.source.exclude)),
        "include": json.dumps(list(rule.tags.include)),
        "exclude": json.dumps(list(rule.tags.exclude)),
        "semver": rule.tags.semver,
        "latest": rule.tags.latest,
        "architectures": json.dumps(list(rule.architectures)),
        "platforms": json.dumps(list(rule.platforms)),
        "enabled": rule.enabled,
        "cron_expression": rule.cron_expression,
        "referrers": rule.referrers,
        "prune": rule.prune,
        "prune_max": str(rule.prune_max),
        "referrer_types": json.dumps(list(rule.referrer_types)),
    }


def sync_rule(row: Task, registry_names: dict[int, str]) -> SyncRule:
    """The rule a task row holds; `registry_names` maps registry row ids to names."""
    return SyncRule(
        name=row.name,
        source=Endpoint(registry_names[ref_id(row, "source_registry")], row.source_repository,
                        _strings(row.source_exclude)),
        target=Endpoint(registry_names[ref_id(row, "target_registry")], row.target_repository),
        tags=TagFilter(
            include=_strings(row.include),
            exclude=_strings(row.exclude),
            semver=row.semver,
            latest=row.latest,
        ),
        architectures=_strings(row.architectures),
        platforms=_strings(row.platforms),
        enabled=bool(row.enabled),
        cron_expression=row.cron_expression,
        referrers=bool(row.referrers),
        prune=bool(row.prune),
        prune_max=_prune_max(row.prune_max),
        referrer_types=_strings(row.referrer_types),
    )


def execution_record(row: Execution, task_name: str) -> ExecutionRecord:
    return ExecutionRecord(
        id=row.id,
        task=task_name,
        trigger=Trigger(row.trigger),
        status=ExecutionStatus(row.status),
        started=from_epoch(row.started),
        finished=None if row.finished is None else from_epoch(row.finished),
        counters=counters_from({name: getattr(row, name) for name in COUNTER_FIELDS}),
        error=row.error,
        parent_id=_fk_id(row, "parent"),
        daemon=daemon_label(row),
        daemon_id=_fk_id(row, "daemon"),
        force_prune=bool(row.force_prune),
        scope=None if row.repositories is None else ScopeCounts(
            row.repositories, row.repositories_new, row.repositories_removed),
    )


def daemon_label(row: Execution) -> str:
    """`host pid N (#id)` of the execution's daemon when the query joined it (else `#id`)."""
    daemon_id = _fk_id(row, "daemon")
    if daemon_id is None:
        return ""
    joined = row.__rel__.get("daemon")  # never a lazy query per record
    if joined is None or joined.host is None:
        return f"#{daemon_id}"
    return f"{joined.host} pid {joined.pid} (#{daemon_id})"


def counter_columns(counters: Counters) -> dict[str, int]:
    return {name: int(getattr(counters, name)) for name in COUNTER_FIELDS}


def tag_result(row: TagResultRow) -> TagResult:
    return TagResult(
        rule=row.rule,
        tag=row.tag,
        outcome=Outcome(row.outcome),
        digest=row.digest,
        reason=row.reason,
        error_kind=row.error_kind,
        repository=row.repository,
    )


def tag_result_key(row: TagResultRow) -> str:
    """`TagResult.key` of a row: `repository:tag`, or the tag alone in rows from before."""
    return f"{row.repository}:{row.tag}" if row.repository else row.tag


def log_event(row: LogRow) -> LogEvent:
    return LogEvent(level=row.level, message=row.message, rule=row.rule, time=row.time)


def task_record(row: Task, names: dict[int, str], latest: ExecutionRecord | None) -> TaskRecord:
    running = latest is not None and latest.status.active
    return TaskRecord(rule=sync_rule(row, names), last_execution=latest, running=running)


def result_columns(id: int, result: TagResult) -> dict[str, object]:
    return {
        "execution": id,
        "rule": result.rule,
        "repository": result.repository,
        "tag": result.tag,
        "outcome": result.outcome.value,
        "digest": result.digest,
        "reason": result.reason,
        "error_kind": result.error_kind,
    }


def log_columns(id: int, seq: int, event: LogEvent) -> dict[str, object]:
    return {
        "execution": id,
        "seq": seq,
        "time": event.time,
        "level": event.level,
        "message": event.message,
        "rule": event.rule,
    }


def _fk_id(row: Model, field: str) -> int | None:
    """A foreign key's raw id without loading the related row (peewee's `<field>_id`)."""
    value = getattr(row, f"{field}_id")
    return None if value is None else int(value)


def ref_id(row: Model, field: str) -> int:
    """A required foreign key's raw id."""
    value = _fk_id(row, field)
    assert value is not None, f"{field} is NOT NULL"
    return value


def _prune_max(text: str) -> PruneLimit:
    """A stored limit; "" (rows from before schema 8) and one the parser no longer takes are
    the default (never no limit)."""
    try:
        return parse_prune_limit(text)
    except ValueError:
        return DEFAULT_LIMIT


def _strings(text: str) -> tuple[str, ...]:
    return tuple(str(item) for item in json.loads(text))
