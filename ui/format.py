"""How the panel shows values: statuses, times, durations, sizes, progress, cron previews.

Pure functions (no NiceGUI, no I/O) so they are tested in milliseconds. Times from the daemon are
UTC; the panel shows them in the server's local time zone, which for the in-process panel is the
daemon's, the same one cron expressions are read in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from regsync.common.text import escape_controls
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

# status -> (label, Quasar colour)
_STATUS: dict[int, tuple[str, str]] = {
    pb.EXECUTION_STATUS_QUEUED: ("queued", "grey"),
    pb.EXECUTION_STATUS_RUNNING: ("running", "primary"),
    pb.EXECUTION_STATUS_SUCCEEDED: ("succeeded", "positive"),
    pb.EXECUTION_STATUS_FAILED: ("failed", "negative"),
    pb.EXECUTION_STATUS_STOPPED: ("stopped", "warning"),
    pb.EXECUTION_STATUS_INTERRUPTED: ("interrupted", "orange"),
}
_TRIGGER: dict[int, str] = {
    pb.TRIGGER_MANUAL: "manual",
    pb.TRIGGER_CRON: "schedule",
    pb.TRIGGER_RETRY: "retry",
    pb.TRIGGER_RESUME: "resume",
}
_OUTCOME: dict[int, tuple[str, str]] = {
    ev.TAG_OUTCOME_COPIED: ("copied", "positive"),
    ev.TAG_OUTCOME_SKIPPED: ("unchanged", "grey"),
    ev.TAG_OUTCOME_FAILED: ("failed", "negative"),
    ev.TAG_OUTCOME_DELETED: ("deleted", "warning"),  # pruned from the target
}
FINISHED = frozenset({pb.EXECUTION_STATUS_SUCCEEDED, pb.EXECUTION_STATUS_FAILED,
                      pb.EXECUTION_STATUS_STOPPED, pb.EXECUTION_STATUS_INTERRUPTED})


def status_label(status: int) -> str:
    return _STATUS.get(status, ("unknown", "grey"))[0]


def status_color(status: int) -> str:
    return _STATUS.get(status, ("unknown", "grey"))[1]


def status_choices() -> dict[int, str]:
    """Filter options: status value -> label."""
    return {value: label for value, (label, _) in _STATUS.items()}


def trigger_label(trigger: int) -> str:
    return _TRIGGER.get(trigger, "-")


def outcome_label(outcome: int) -> str:
    return _OUTCOME.get(outcome, ("unknown", "grey"))[0]


def outcome_color(outcome: int) -> str:
    return _OUTCOME.get(outcome, ("unknown", "grey"))[1]


def when(stamp: datetime | None) -> str:
    """A local wall-clock time to the second, or a dash."""
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M:%S") if stamp else "-"


def started_at(execution: pb.Execution) -> datetime | None:
    if not execution.HasField("started"):
        return None
    return execution.started.ToDatetime(tzinfo=UTC)


def finished_at(execution: pb.Execution) -> datetime | None:
    if not execution.HasField("finished"):
        return None
    return execution.finished.ToDatetime(tzinfo=UTC)


def next_run(task: pb.Task) -> datetime | None:
    return task.next_run.ToDatetime(tzinfo=UTC) if task.HasField("next_run") else None


def duration(seconds: float | None) -> str:
    """'850 ms', '12.3 s', '4 min 05 s', '2 h 03 min'; a dash when unknown."""
    if seconds is None or seconds < 0:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def elapsed(execution: pb.Execution, now: datetime) -> float | None:
    """Seconds from start to finish, or to `now` while it runs."""
    start = started_at(execution)
    if start is None:
        return None
    end = finished_at(execution) or now
    return (end - start).total_seconds()


def shown(text: str, *, keep_newlines: bool = False) -> str:
    """Any name or message from the daemon as the page shows it: control, invisible and
    reordering characters as escapes (`\x1b`), since a registry may have put them there."""
    return escape_controls(text, keep_newlines=keep_newlines)


def page_range(first: int, count: int, total: int) -> str:
    """'tags 201-400 of 100000' for a page of `count` results starting at position `first`."""
    return f"tags {first + 1}-{first + count} of {max(total, first + count)}"


def progress(counters: ev.Counters) -> float:
    """Share of tags done (copied, skipped or failed), 0..1; 0 before the tags are known."""
    total = _total(counters)
    return _done(counters) / total if total else 0.0


def tally(counters: ev.Counters) -> str:
    """'3/10 tags: 2 copied, 1 unchanged, 0 failed' (and '; 2 target tags pruned')."""
    pruned = f"; {counters.tags_deleted} target tags pruned" if counters.tags_deleted else ""
    return (f"{_done(counters)}/{_total(counters)} tags: {counters.tags_copied} copied, "
            f"{counters.tags_skipped} unchanged, {counters.tags_failed} failed{pruned}")


def result_detail(result: ev.TagResult) -> str:
    """What a result row shows: a pruned tag's digest with why, else the reason or digest."""
    if result.outcome == ev.TAG_OUTCOME_DELETED:
        return f"{result.digest} ({result.reason})"
    return result.reason or result.digest


def _done(counters: ev.Counters) -> int:
    return counters.tags_copied + counters.tags_skipped + counters.tags_failed


def _total(counters: ev.Counters) -> int:
    # a rule whose tags could not be listed fails as one item it never counted in the total
    return max(counters.tags_total, _done(counters))


@dataclass(frozen=True)
class CronPreview:
    """The next run times of a schedule, as the daemon computed them, or why there are none."""

    times: tuple[str, ...] = ()
    error: str = ""


def cron_preview(reply: pb.PreviewScheduleResponse) -> CronPreview:
    """The daemon's answer (PreviewSchedule) for the wizard: its scheduler's fire times, in UTC
    as it fires them (not the browser's zone), so the helper shows what the daemon will do."""
    if not reply.cron_expression:
        return CronPreview(error="no schedule: manual runs only")
    return CronPreview(times=tuple(in_utc(t.ToDatetime(tzinfo=UTC)) for t in reply.next_runs))


def in_utc(stamp: datetime) -> str:
    """A time the daemon schedules by, labelled: '2026-01-02 02:00:00 UTC'."""
    return stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
