"""The daemon's values -> protobuf messages (replies and stream events). Pure.

A registry reply says whether a password is set, never what it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from ..engine.events import COUNTER_FIELDS, Counters, LogEvent, Outcome, TagResult
from ..engine.filters import TagSelection
from ..engine.plan import TagPlan
from ..engine.prunerun import PrunePlan
from ..engine.scope_preview import ScopePreview
from ..runtime.watch import WatchItem
from ..settings import SyncRule
from ..store import records as model
from ..values.prunelimit import DEFAULT_LIMIT

TRIGGER_TO_PB = {
    model.Trigger.MANUAL: pb.TRIGGER_MANUAL,
    model.Trigger.CRON: pb.TRIGGER_CRON,
    model.Trigger.RETRY: pb.TRIGGER_RETRY,
    model.Trigger.RESUME: pb.TRIGGER_RESUME,
}
STATUS_TO_PB = {
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
    Outcome.DELETED: ev.TAG_OUTCOME_DELETED,
}


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
        prune=rule.prune,
        prune_max="" if rule.prune_max == DEFAULT_LIMIT else str(rule.prune_max),  # "" = 50%
        referrer_artifact_types=rule.referrer_types,
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
        trigger=TRIGGER_TO_PB[record.trigger],
        status=STATUS_TO_PB[record.status],
        started=timestamp(record.started),
        counters=counters(record.counters),
        error=record.error,
        parent_id=record.parent_id or 0,
        daemon_id=record.daemon_id or 0,
        daemon=record.daemon,
    )
    if record.scope is not None:
        reply.repositories.CopyFrom(pb.RepositoryScope(
            matched=record.scope.matched, added=record.scope.new, removed=record.scope.removed))
    if record.finished is not None:
        reply.finished.CopyFrom(timestamp(record.finished))
    return reply




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




def stats(values: model.Stats) -> pb.Stats:
    return pb.Stats(**{f.name: getattr(values, f.name) for f in dataclasses.fields(values)})


def daemon_status(status: model.DaemonStatus) -> pb.Status:
    return pb.Status(
        version=status.version,
        uptime_seconds=status.uptime_seconds,
        running=[execution(e) for e in status.running],
        next_runs=[pb.ScheduledRun(task=r.task, at=timestamp(r.at)) for r in status.next_runs],
        store=status.store,
        daemon=status.daemon,
        fires_schedules=status.fires_schedules,
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


def plan_response(selection: TagSelection, plans: Iterable[TagPlan],
                  prune: PrunePlan | None = None) -> pb.PlanResponse:
    deletions = [] if prune is None else [
        pb.PlannedDeletion(tag=d.tag, digest=d.digest, reason=d.reason,
                           blocked=prune.blocked.get(d.tag, ""))
        for d in prune.deletions
    ]
    return pb.PlanResponse(
        deletions=deletions,
        prune_notes=() if prune is None else prune.notes,
        tags=[
            pb.PlannedTag(
                tag=p.tag,
                action=p.action,
                reason=p.reason,
                source_digest=p.source_digest,
                target_digest=p.target_digest,
                referrers=p.referrers,
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

