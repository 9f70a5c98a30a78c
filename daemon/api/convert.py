"""Protobuf messages <-> the daemon's values. Pure: no I/O beyond what config validation reads.

Inbound specs are validated by `config`, so a task created through the API obeys exactly the rules
of the YAML file: the spec becomes a one-item document in the seed's shape, `config.parse_config`
checks it, and its problem lines are renamed to the API's fields ("task.tags.include[1]: ...").
API strings are literal: every "$" is escaped before `${VAR}` substitution can see it, so nothing
a client sends makes the daemon read its environment. The registry password never goes through
the parser at all (validation sees a placeholder); it is stored in the template form of a literal
(`runconfig.literal_template`), so a "${VAR}" password is those six characters.

Outbound, a registry reply says whether a password is set, never what it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import yaml
from google.protobuf.timestamp_pb2 import Timestamp
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import model
from ..config import Config, ConfigProblems, RegistrySettings, SyncRule, parse_config
from ..engine.copy import TagPlan
from ..engine.events import COUNTER_FIELDS, Counters, LogEvent, Outcome, TagResult
from ..engine.filters import TagSelection
from ..engine.scope_preview import ScopePreview
from ..errors import ConfigError
from ..plane import WatchItem
from ..runconfig import literal_template

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_PLACEHOLDER_URL = "https://registry.invalid"
_PLACEHOLDER_PASSWORD = "placeholder"
# YAML paths whose API field has another name.
_RENAMED = {"registry.ratelimit.qps": "registry.qps"}

# Inbound: specs ---------------------------------------------------------------------------------


def registry_settings(
    spec: pb.RegistrySpec, *, update: bool = False
) -> tuple[RegistrySettings, bool]:
    """The validated settings of `spec`, and whether to keep the stored password.

    On update an absent password means "keep it" (returned as None with keep = True: the store
    keeps it only for the same url and user); a present but empty one removes it. A password is
    returned in its stored (template) form.

    Raises:
        ConfigError: naming the field, e.g. "registry.url: must start with https:// or http://".
    """
    if not spec.name:
        raise ConfigError("registry.name: is required")
    keep = update and not spec.HasField("password")
    password = spec.password if spec.HasField("password") else ""
    fields: dict[str, Any] = {
        "url": _literal(spec.url) or None,
        "username": _literal(spec.username) or None,
        "password": _PLACEHOLDER_PASSWORD if (password or (keep and spec.username)) else None,
        "insecure": spec.insecure,
        "ca_file": _literal(spec.ca_file) or None,
        "ratelimit": {"qps": spec.qps} if spec.qps else None,
    }
    document = {"registries": {spec.name: fields}}
    config = _parse(document, {f'registries "{spec.name}": ': "registry."})
    settings = config.registries[spec.name]
    return dataclasses.replace(settings, password=literal_template(password) or None), keep


def sync_rule(spec: pb.TaskSpec, registries: Collection[str], *, field: str = "task") -> SyncRule:
    """The validated rule of `spec`; `registries` are the names known to the daemon.

    Raises:
        ConfigError: naming the field, e.g. "task.tags.include[1]: invalid regular expression".
    """
    document = {
        "registries": {name: {"url": _PLACEHOLDER_URL} for name in registries},
        "sync_rules": [_rule_fields(spec)],
    }
    label = f'sync_rules[0] "{_literal(spec.name)}": ' if spec.name else "sync_rules[0]: "
    return _parse(document, {label: f"{field}."}).rules[0]


def preview_rule(spec: pb.TaskSpec, registries: Collection[str], *, listing: bool) -> SyncRule:
    """The rule to preview filters with: the task need not exist, so a missing name or target is
    filled in, and so is the source when tags are given (`listing` False: nothing is contacted).
    """
    filled = pb.TaskSpec()
    filled.CopyFrom(spec)
    filled.name = spec.name or "preview"
    known = set(registries)
    if not listing and not spec.HasField("source"):
        known.add("preview")
        filled.source.CopyFrom(pb.Endpoint(registry="preview", repository="preview/source"))
    if not spec.HasField("target"):
        known.add("preview")
        filled.target.CopyFrom(pb.Endpoint(registry="preview", repository="preview/target"))
    return sync_rule(filled, sorted(known), field="spec")


def execution_query(request: pb.ListExecutionsRequest) -> model.ExecutionQuery:
    """Raises: ConfigError for a negative limit or id, or an unspecified status."""
    if request.limit < 0:
        raise ConfigError(f"limit: must not be negative, got {request.limit}")
    if request.before_id < 0:
        raise ConfigError(f"before_id: must not be negative, got {request.before_id}")
    statuses = []
    for position, value in enumerate(request.status):
        if value not in _STATUS_FROM_PB:
            raise ConfigError(f"status[{position}]: not a valid execution status ({value})")
        statuses.append(_STATUS_FROM_PB[value])
    return model.ExecutionQuery(
        task=request.task or None,
        statuses=tuple(statuses),
        limit=min(request.limit or 50, 500),
        before_id=request.before_id or None,
    )


def log_window(request: pb.LogsRequest) -> tuple[int, int]:
    """(offset, limit), the limit capped. Raises: ConfigError for negative numbers."""
    if request.offset < 0:
        raise ConfigError(f"offset: must not be negative, got {request.offset}")
    if request.limit < 0:
        raise ConfigError(f"limit: must not be negative, got {request.limit}")
    return request.offset, min(request.limit or model.LOGS_PAGE_MAX, model.LOGS_PAGE_MAX)


def _literal(text: str) -> str:
    return text.replace("$", "$$")


def _rule_fields(spec: pb.TaskSpec) -> dict[str, Any]:
    def endpoint(value: pb.Endpoint) -> dict[str, Any] | None:
        return {
            "registry": _literal(value.registry) or None,
            "repository": _literal(value.repository) or None,
            **({"exclude": [_literal(e) for e in value.exclude]} if value.exclude else {}),
        }

    tags = spec.tags
    return {
        "name": _literal(spec.name) or None,
        "source": endpoint(spec.source) if spec.HasField("source") else None,
        "target": endpoint(spec.target) if spec.HasField("target") else None,
        "tags": {
            "include": [_literal(p) for p in tags.include],
            "exclude": [_literal(p) for p in tags.exclude],
            "semver": _literal(tags.semver) or None,
            # 0 means "all" in the proto; the YAML rejects 0, so it is absent there
            "latest": tags.latest or None,
        },
        "architectures": [_literal(a) for a in spec.architectures],
        "platforms": [_literal(p) for p in spec.platforms],
        "enabled": spec.enabled,
        "cron_expression": _literal(spec.cron_expression) or None,
        "referrers": spec.referrers if spec.HasField("referrers") else True,
    }


def _parse(document: Mapping[str, Any], prefixes: Mapping[str, str]) -> Config:
    """`parse_config` of a document built in memory, its problems renamed to API fields."""
    try:
        # libyaml's dumper: the pure-Python one takes ~1 s of CPU per MB on the API's thread
        text = yaml.dump(dict(document), Dumper=_DUMPER, sort_keys=False)
        return parse_config(text, source="", env={})
    except ConfigProblems as exc:
        raise ConfigProblems([_rename(line, prefixes) for line in exc.problems]) from None


def _rename(line: str, prefixes: Mapping[str, str]) -> str:
    for prefix, field in prefixes.items():
        if line.startswith(prefix):
            line = field + line[len(prefix) :]
            break
    for old, new in _RENAMED.items():
        if line.startswith(old + ":"):
            line = new + line[len(old) :]
    return line


# Outbound: records ------------------------------------------------------------------------------

_TRIGGER_TO_PB = {
    model.Trigger.MANUAL: pb.TRIGGER_MANUAL,
    model.Trigger.CRON: pb.TRIGGER_CRON,
    model.Trigger.RETRY: pb.TRIGGER_RETRY,
    model.Trigger.RESUME: pb.TRIGGER_RESUME,
}
_STATUS_TO_PB = {
    model.ExecutionStatus.QUEUED: pb.EXECUTION_STATUS_QUEUED,
    model.ExecutionStatus.RUNNING: pb.EXECUTION_STATUS_RUNNING,
    model.ExecutionStatus.SUCCEEDED: pb.EXECUTION_STATUS_SUCCEEDED,
    model.ExecutionStatus.FAILED: pb.EXECUTION_STATUS_FAILED,
    model.ExecutionStatus.STOPPED: pb.EXECUTION_STATUS_STOPPED,
    model.ExecutionStatus.INTERRUPTED: pb.EXECUTION_STATUS_INTERRUPTED,
}
_OUTCOME_TO_PB = {
    Outcome.COPIED: ev.TAG_OUTCOME_COPIED,
    Outcome.SKIPPED: ev.TAG_OUTCOME_SKIPPED,
    Outcome.FAILED: ev.TAG_OUTCOME_FAILED,
}
_TRIGGER_FROM_PB = {value: key for key, value in _TRIGGER_TO_PB.items()}
_STATUS_FROM_PB = {value: key for key, value in _STATUS_TO_PB.items()}


def timestamp(moment: datetime) -> Timestamp:
    """A naive datetime is taken as UTC (the store's convention)."""
    result = Timestamp()
    result.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return result


def registry(record: model.RegistryRecord) -> pb.Registry:
    """The reply for a stored registry: `password_set`, never the password."""
    s = record.settings
    return pb.Registry(
        name=s.name,
        url=s.url,
        username=s.username or "",
        password_set=record.password_set,
        password_dropped=record.password_dropped,
        insecure=s.insecure,
        ca_file=s.ca_file or "",
        qps=s.qps or 0.0,
        used_by=record.used_by,
    )


def task_spec(rule: SyncRule) -> pb.TaskSpec:
    tags = rule.tags
    return pb.TaskSpec(
        name=rule.name,
        source=pb.Endpoint(registry=rule.source.registry, repository=rule.source.repository,
                           exclude=rule.source.exclude),
        target=pb.Endpoint(registry=rule.target.registry, repository=rule.target.repository),
        tags=pb.TagFilter(
            include=tags.include,
            exclude=tags.exclude,
            semver=tags.semver or "",
            latest=tags.latest or 0,
        ),
        architectures=rule.architectures,
        platforms=rule.platforms,
        enabled=rule.enabled,
        cron_expression=rule.cron_expression or "",
        referrers=rule.referrers,
    )


def task(record: model.TaskRecord) -> pb.Task:
    reply = pb.Task(spec=task_spec(record.rule), running=record.running)
    if record.next_run is not None:
        reply.next_run.CopyFrom(timestamp(record.next_run))
    if record.last_execution is not None:
        reply.last_execution.CopyFrom(execution(record.last_execution))
    return reply


def counters(values: Counters) -> ev.Counters:
    return ev.Counters(**{name: getattr(values, name) for name in COUNTER_FIELDS})


def execution(record: model.ExecutionRecord) -> pb.Execution:
    reply = pb.Execution(
        id=record.id,
        task=record.task,
        trigger=_TRIGGER_TO_PB[record.trigger],
        status=_STATUS_TO_PB[record.status],
        started=timestamp(record.started),
        counters=counters(record.counters),
        error=record.error,
        parent_id=record.parent_id or 0,
    )
    if record.scope is not None:
        reply.repositories.CopyFrom(pb.RepositoryScope(
            matched=record.scope.matched, added=record.scope.new, removed=record.scope.removed))
    if record.finished is not None:
        reply.finished.CopyFrom(timestamp(record.finished))
    return reply


def execution_record(message: pb.Execution) -> model.ExecutionRecord:
    """The inverse of `execution` (for clients, and to prove the mapping loses nothing)."""
    return model.ExecutionRecord(
        id=message.id,
        task=message.task,
        trigger=_TRIGGER_FROM_PB[message.trigger],
        status=_STATUS_FROM_PB[message.status],
        started=message.started.ToDatetime(tzinfo=UTC),
        finished=message.finished.ToDatetime(tzinfo=UTC) if message.HasField("finished") else None,
        counters=model.counters_from({n: getattr(message.counters, n) for n in COUNTER_FIELDS}),
        error=message.error,
        parent_id=message.parent_id or None,
    )


def tag_result(result: TagResult) -> ev.TagResult:
    return ev.TagResult(
        rule=result.rule,
        tag=result.tag,
        outcome=_OUTCOME_TO_PB[result.outcome],
        digest=result.digest,
        reason=result.reason,
        error_kind=result.error_kind,
        repository=result.repository,
    )


def log_line(event: LogEvent) -> ev.LogLine:
    return ev.LogLine(time=event.time, level=event.level, message=event.message)


def execution_detail(record: model.ExecutionRecord, page: model.ResultsPage) -> pb.ExecutionDetail:
    token = "" if page.next_after is None else str(page.next_after)
    return pb.ExecutionDetail(execution=execution(record), tags=[tag_result(t) for t in page.results],
                              next_page_token=token, total_tags=page.total,
                              new_repositories=page.changes.new,
                              removed_repositories=page.changes.removed)


def results_window(request: pb.ExecutionRequest) -> tuple[int, int]:
    """(after, limit) of GetExecution's page. Raises: ConfigError for a negative page_size or a
    page_token this daemon did not give (tokens are a result's position, digits only)."""
    if request.page_size < 0:
        raise ConfigError(f"page_size: must not be negative, got {request.page_size}")
    token = request.page_token
    if token and not (token.isascii() and token.isdigit() and len(token) <= 18):
        raise ConfigError("page_token: not a token this daemon gave (pass next_page_token)")
    limit = min(request.page_size or model.RESULTS_PAGE_DEFAULT, model.RESULTS_PAGE_MAX)
    return int(token or 0), limit


def stats(values: model.Stats) -> pb.Stats:
    return pb.Stats(**{f.name: getattr(values, f.name) for f in dataclasses.fields(values)})


def daemon_status(status: model.DaemonStatus) -> pb.Status:
    return pb.Status(
        version=status.version,
        uptime_seconds=status.uptime_seconds,
        running=[execution(e) for e in status.running],
        next_runs=[pb.ScheduledRun(task=r.task, at=timestamp(r.at)) for r in status.next_runs],
        store=status.store,
    )


def verdict(result: model.ConnectionVerdict) -> pb.TestRegistryResponse:
    return pb.TestRegistryResponse(
        **{f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    )


def apply_response(result: model.ApplyResult) -> pb.ApplyResponse:
    return pb.ApplyResponse(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})


def watch_event(item: WatchItem) -> pb.WatchEvent:
    reply = pb.WatchEvent(
        execution_id=item.execution_id, task=item.task, current_tag=item.current_tag
    )
    if item.execution is not None:
        reply.execution.CopyFrom(execution(item.execution))
    elif item.tag is not None:
        reply.tag.CopyFrom(tag_result(item.tag))
    elif item.log is not None:
        reply.log.CopyFrom(log_line(item.log))
    elif item.progress is not None:
        reply.progress.CopyFrom(counters(item.progress))
    return reply


def _dropped(selection: TagSelection) -> list[pb.DroppedTag]:
    return [pb.DroppedTag(tag=tag, reason=reason) for tag, reason in selection.dropped]


def plan_response(selection: TagSelection, plans: Iterable[TagPlan]) -> pb.PlanResponse:
    return pb.PlanResponse(
        tags=[
            pb.PlannedTag(
                tag=p.tag,
                action=p.action,
                reason=p.reason,
                source_digest=p.source_digest,
                target_digest=p.target_digest,
            )
            for p in plans
        ],
        dropped=_dropped(selection),
    )


def scope_preview(found: ScopePreview) -> pb.PreviewRepositoriesResponse:
    return pb.PreviewRepositoriesResponse(
        repositories=[pb.PreviewedRepository(source=r.source, target=r.target, tags=r.tags,
                                             kept=r.kept, error=r.error)
                      for r in found.repositories],
        truncated=found.truncated, limit=found.limit)


def preview_response(selection: TagSelection) -> pb.PreviewTagsResponse:
    return pb.PreviewTagsResponse(kept=selection.kept, dropped=_dropped(selection))
