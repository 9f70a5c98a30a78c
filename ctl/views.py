"""The table view of each reply: what a person reads. Scripts use `-o json` instead.

One function per reply type, protobuf in, text out; no I/O, so each is tested with sample protos.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, tzinfo

from regsync.common.text import escape_controls
from regsync.common.units import size
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .output import (
    NONE,
    duration,
    fields,
    or_none,
    outcome_name,
    short_digest,
    status_name,
    table,
    trigger_name,
    when,
    yes_no,
)


def endpoint(end: pb.Endpoint) -> str:
    return f"{end.registry}/{end.repository}"


def registries_table(registries: Sequence[pb.Registry]) -> str:
    rows = [
        [r.name, r.url, or_none(r.username), "set" if r.password_set else NONE,
         yes_no(r.insecure), f"{r.qps:g}" if r.qps else NONE, or_none(", ".join(r.used_by))]
        for r in registries
    ]
    return table(["NAME", "URL", "USERNAME", "PASSWORD", "INSECURE", "QPS", "USED BY"], rows)


def registry_detail(r: pb.Registry) -> str:
    return fields([
        ("name", r.name), ("url", r.url), ("username", or_none(r.username)),
        ("password", "set" if r.password_set else "not set"), ("insecure", yes_no(r.insecure)),
        ("ca file", or_none(r.ca_file)), ("qps", f"{r.qps:g}" if r.qps else "unlimited"),
        ("used by", or_none(", ".join(r.used_by))),
    ])


def registry_test(name: str, verdict: pb.TestRegistryResponse) -> str:
    if verdict.ok:
        version = f", {escape_controls(verdict.api_version)}" if verdict.api_version else ""
        return f"registry {name}: ok ({verdict.latency_ms:.0f} ms{version})"
    kind = f" [{escape_controls(verdict.error_kind)}]" if verdict.error_kind else ""
    return (f"registry {name}: FAILED{kind}: {or_none(escape_controls(verdict.message))} "
            f"(reachable: {yes_no(verdict.reachable)}, credentials: {yes_no(verdict.auth_ok)})")


def tasks_table(tasks: Sequence[pb.Task], tz: tzinfo | None = None) -> str:
    rows = [
        [t.spec.name, endpoint(t.spec.source), endpoint(t.spec.target),
         t.spec.cron_expression or "manual", yes_no(t.spec.enabled),
         when(t.next_run, tz), _last(t)]
        for t in tasks
    ]
    return table(["NAME", "SOURCE", "TARGET", "SCHEDULE", "ENABLED", "NEXT RUN", "LAST"], rows)


def task_detail(t: pb.Task, tz: tzinfo | None = None) -> str:
    spec = t.spec
    return fields([
        ("name", spec.name), ("source", endpoint(spec.source)), ("target", endpoint(spec.target)),
        *([("exclude repos", " ".join(spec.source.exclude))] if spec.source.exclude else []),
        ("include", or_none(" ".join(spec.tags.include))),
        ("exclude", or_none(" ".join(spec.tags.exclude))),
        ("semver", or_none(spec.tags.semver)),
        ("latest", str(spec.tags.latest) if spec.tags.latest else "all"),
        ("architectures", or_none(" ".join(spec.architectures))),
        ("platforms", or_none(" ".join(spec.platforms))),
        ("referrers", referrers(spec)),
        ("schedule", spec.cron_expression or "manual"), ("enabled", yes_no(spec.enabled)),
        ("prune", f"yes, at most {spec.prune_max or '50%'} a run" if spec.prune else "no"),
        ("next run", when(t.next_run, tz)), ("last run", _last(t)),
    ])


def referrers(spec: pb.TaskSpec) -> str:
    """Whether signatures, SBOMs and attestations follow, and which (unset: on, all)."""
    if spec.HasField("referrers") and not spec.referrers:
        return "off"
    return " ".join(spec.referrer_artifact_types) or "all"


def _last(t: pb.Task) -> str:
    if t.running:
        return f"running (#{t.last_execution.id})"
    if not t.HasField("last_execution"):
        return NONE
    return f"{status_name(t.last_execution.status)} (#{t.last_execution.id})"


def executions_table(executions: Sequence[pb.Execution], tz: tzinfo | None = None) -> str:
    rows = [
        [str(e.id), e.task, status_name(e.status), trigger_name(e.trigger),
         when(e.started, tz), took(e), tag_counts(e.counters), size(e.counters.bytes_copied)]
        for e in executions
    ]
    return table(["ID", "TASK", "STATUS", "TRIGGER", "STARTED", "TOOK", "TAGS", "COPIED"], rows)


def execution_detail(d: pb.ExecutionDetail, tz: tzinfo | None = None) -> str:
    e = d.execution
    pairs = [
        ("execution", str(e.id)), ("task", e.task), ("status", status_name(e.status)),
        ("trigger", trigger_name(e.trigger) + (f" of #{e.parent_id}" if e.parent_id else "")),
        ("started", when(e.started, tz)), ("finished", when(e.finished, tz)), ("took", took(e)),
        ("tags", tag_counts(e.counters)), ("blobs", blob_counts(e.counters)),
        ("referrers", f"{e.counters.referrers_copied} copied"),
        ("copied", size(e.counters.bytes_copied)),
        *([("pruned", f"{e.counters.tags_deleted} target tags deleted")]
          if e.counters.tags_deleted else []),
        ("error", or_none(e.error)),
        ("daemon", or_none(e.daemon)),
    ]
    if e.HasField("repositories"):
        r = e.repositories
        pairs.append(("repositories", f"{r.matched} matched, {r.added} new, {r.removed} removed"))
    parts = [fields(pairs)]
    for label, names, count in (("new", d.new_repositories, e.repositories.added),
                                ("removed", d.removed_repositories, e.repositories.removed)):
        if names:
            more = f" (the first {len(names)})" if count > len(names) else ""
            parts.append(f"{label} repositories{more}:\n"
                         + "\n".join("  " + escape_controls(n) for n in names))
    if d.tags:
        parts.append(tag_results_table(d.tags, new=set(d.new_repositories)))
    return "\n\n".join(parts)


def tag_results_table(tags: Sequence[ev.TagResult], new: Collection[str] = ()) -> str:
    """One row per tag; a run over several repositories (a glob task) is grouped by repository
    (stable: within one, the order the daemon recorded), the repositories new in it marked."""
    if len({t.repository for t in tags}) > 1 or new:
        ordered = sorted(tags, key=lambda t: t.repository)
        rows = [[_repository(t.repository, new), t.tag or NONE, outcome_name(t.outcome),
                 short_digest(t.digest), _reason(t)] for t in ordered]
        return table(["REPOSITORY", "TAG", "OUTCOME", "DIGEST", "REASON"], rows)
    rows = [[t.tag, outcome_name(t.outcome), short_digest(t.digest), _reason(t)] for t in tags]
    return table(["TAG", "OUTCOME", "DIGEST", "REASON"], rows)


def _repository(name: str, new: Collection[str]) -> str:
    return name + " (new)" if name in new else name or NONE


def _reason(t: ev.TagResult) -> str:
    kind = f"[{t.error_kind}] " if t.error_kind else ""
    return or_none(kind + t.reason)


def tag_counts(c: ev.Counters) -> str:
    done = c.tags_copied + c.tags_skipped + c.tags_failed
    return (f"{done}/{max(done, c.tags_total)} ({c.tags_copied} copied, {c.tags_skipped} skipped, "
            f"{c.tags_failed} failed)")


def blob_counts(c: ev.Counters) -> str:
    return f"{c.blobs_copied} copied, {c.blobs_mounted} mounted, {c.blobs_skipped} present"


def took(e: pb.Execution, now: datetime | None = None) -> str:
    if e.started.seconds == 0:
        return NONE
    if e.HasField("finished"):
        end = e.finished.ToDatetime(UTC)
    else:
        end = now or datetime.now(UTC)
    return duration((end - e.started.ToDatetime(UTC)).total_seconds())


def plan_text(name: str, plan: pb.PlanResponse) -> str:
    rows = [[t.tag, t.action, or_none(t.reason)] for t in plan.tags]
    counts = {action: sum(t.action == action for t in plan.tags)
              for action in ("copy", "skip", "fail")}
    parts = [(f"task {name}: {counts['copy']} to copy, {counts['skip']} unchanged, "
             f"{counts['fail']} failing, {len(plan.dropped)} filtered out")]
    if any(":" in t.tag for t in plan.tags):  # a glob task: "repository:tag", grouped
        repositories = sorted({t.tag.partition(":")[0] for t in plan.tags})
        parts[0] += f" in {len(repositories)} repositories"
        rows = [[*t.tag.partition(":")[::2], t.action, or_none(t.reason)]
                for t in sorted(plan.tags, key=lambda t: t.tag.partition(":")[0])]
        parts.append(table(["REPOSITORY", "TAG", "ACTION", "REASON"], rows))
    elif rows:
        parts.append(table(["TAG", "ACTION", "REASON"], rows))
    if plan.dropped:
        parts.append(table(["FILTERED OUT", "WHY"], [[d.tag, d.reason] for d in plan.dropped]))
    if plan.deletions or plan.prune_notes:
        parts[0] += f"; {len(plan.deletions)} target tags to prune after the copies"
        rows = [[t.tag, short_digest(t.digest),
                 t.reason + (f" (by digest only: {t.blocked})" if t.blocked else "")]
                for t in plan.deletions]
        if rows:
            parts.append(table(["TO PRUNE", "DIGEST", "WHY"], rows))
        parts += [f"note: {note}" for note in plan.prune_notes]
    return "\n\n".join(parts)


def status_text(s: pb.Status, tz: tzinfo | None = None) -> str:
    parts = [fields([("version", s.version), ("uptime", duration(s.uptime_seconds)),
                     ("store", or_none(s.store)), ("daemon", or_none(s.daemon)),
                     ("running", str(len(s.running)))])]
    if s.running:
        rows = [[str(e.id), e.task, status_name(e.status), took(e), tag_counts(e.counters),
                 size(e.counters.bytes_copied)] for e in s.running]
        parts.append(table(["ID", "TASK", "STATUS", "FOR", "TAGS", "COPIED"], rows))
    if s.next_runs:
        parts.append(table(["NEXT RUN", "TASK"], [[when(r.at, tz), r.task] for r in s.next_runs]))
    elif s.daemon and not s.fires_schedules:
        parts.append("schedules: fired by another daemon on this store (the leader)")
    else:
        parts.append("no scheduled runs")
    return "\n\n".join(parts)


def stats_text(s: pb.Stats) -> str:
    return fields([
        ("registries", str(s.registries_total)),
        ("tasks", f"{s.tasks_total} ({s.tasks_enabled} enabled)"),
        ("running", str(s.running)),
        ("today", (f"{s.succeeded_today} succeeded, {s.failed_today} failed, "
                  f"{size(s.bytes_copied_today)} copied")),
        ("all time", (f"{s.executions_total} executions, {s.succeeded_total} succeeded, "
                     f"{s.failed_total} failed")),
    ])


def apply_text(r: pb.ApplyResponse) -> str:
    lines = [f"registry {n} created" for n in r.registries_created]
    lines += [f"registry {n} updated" for n in r.registries_updated]
    lines += [f"task {n} created" for n in r.tasks_created]
    lines += [f"task {n} updated" for n in r.tasks_updated]
    lines += [f"registry {n}: its stored password was removed (the file gives none)"
              for n in r.passwords_dropped]
    return "\n".join(lines) or "nothing to change"


def registry_updated(r: pb.Registry) -> str:
    """What `registries edit` did, and, loudly, a password the daemon dropped."""
    text = f"registry {r.name} updated"
    if r.password_dropped:
        text += ("\nits stored password was dropped: it stays bound to the url and user it was "
                 f"given for; set it again with: regsyncctl registries edit {r.name} "
                 "--password-stdin")
    return text


def log_line(line: ev.LogLine, tz: tzinfo | None = None) -> str:
    moment = datetime.fromtimestamp(line.time, UTC).astimezone(tz)
    level, message = escape_controls(line.level.upper()), escape_controls(line.message)
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} {level:<7} {message}"
