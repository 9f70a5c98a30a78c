"""What regsyncctl prints: units, tables, and each reply's view, from sample protos (UTC)."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from regsync.common.units import size
from regsync.ctl import output, progress, views
from regsync.ctl.context import to_dict
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

T0 = 1_714_564_800  # 2024-05-01 12:00:00 UTC


def stamp(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (150 * 1024**2, "150 MiB"), (int(1.25 * 1024**3), "1.2 GiB"), (3 * 1024**6, "3072 PiB"),
])
def test_size(n: int, text: str) -> None:
    assert size(n) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.42, "0.4s"), (12.9, "12s"), (185, "3m05s"), (7380, "2h03m"), (3 * 86400 + 4 * 3600, "3d04h"),
])
def test_duration(seconds: float, text: str) -> None:
    assert output.duration(seconds) == text


def test_when_and_unset_timestamps() -> None:
    assert output.when(stamp(T0), UTC) == "2024-05-01 12:00:00"
    assert output.when(Timestamp(), UTC) == "-"


def test_table_aligns_columns_and_does_not_pad_the_last() -> None:
    text = output.table(["A", "LONG HEADER", "Z"], [["xxxx", "1", "end"], ["y", "22", ""]])
    assert text.splitlines() == [
        "A     LONG HEADER  Z",
        "xxxx  1            end",
        "y     22",
    ]


def test_enum_words_and_digests() -> None:
    assert output.status_name(pb.EXECUTION_STATUS_INTERRUPTED) == "interrupted"
    assert output.trigger_name(pb.TRIGGER_RETRY) == "retry"
    assert output.outcome_name(ev.TAG_OUTCOME_COPIED) == "copied"
    assert output.short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert output.short_digest("") == "-"


def test_registries_table_never_shows_a_password() -> None:
    text = views.registries_table([
        pb.Registry(name="hub", url="https://registry-1.docker.io", username="alice",
                    password_set=True, used_by=["nginx", "redis"]),
        pb.Registry(name="local", url="http://127.0.0.1:5000", insecure=True, qps=2.5),
    ])
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "URL", "USERNAME", "PASSWORD", "INSECURE", "QPS", "USED",
                                "BY"]
    assert lines[1].split() == ["hub", "https://registry-1.docker.io", "alice", "set", "no", "-",
                                "nginx,", "redis"]
    assert lines[2].split() == ["local", "http://127.0.0.1:5000", "-", "-", "yes", "2.5", "-"]


def test_registry_test_verdicts() -> None:
    good = pb.TestRegistryResponse(ok=True, reachable=True, auth_ok=True,
                                   api_version="registry/2.0", latency_ms=12.4)
    assert views.registry_test("hub", good) == "registry hub: ok (12 ms, registry/2.0)"
    bad = pb.TestRegistryResponse(reachable=True, message="credentials refused",
                                  error_kind="auth")
    assert views.registry_test("hub", bad) == (
        "registry hub: FAILED [auth]: credentials refused (reachable: yes, credentials: no)")


def sample_task(**kw: object) -> pb.Task:
    task = pb.Task(spec=pb.TaskSpec(
        name="nginx", source=pb.Endpoint(registry="hub", repository="library/nginx"),
        target=pb.Endpoint(registry="local", repository="nginx"), enabled=True,
        cron_expression="0 2 * * *", tags=pb.TagFilter(include=["^1"], latest=3),
    ), next_run=stamp(T0 + 3600), **kw)  # type: ignore[arg-type]
    return task


def test_tasks_table_shows_last_and_running() -> None:
    finished = sample_task(last_execution=pb.Execution(id=7, status=pb.EXECUTION_STATUS_FAILED))
    running = sample_task(last_execution=pb.Execution(id=8), running=True)
    never = pb.Task(spec=pb.TaskSpec(name="manual", source=pb.Endpoint(registry="a",
                                                                       repository="b")))
    lines = views.tasks_table([finished, running, never], UTC).splitlines()
    assert lines[1].split() == ["nginx", "hub/library/nginx", "local/nginx", "0", "2", "*", "*",
                                "*", "yes", "2024-05-01", "13:00:00", "failed", "(#7)"]
    assert lines[2].endswith("running (#8)")
    assert lines[3].split()[3:] == ["manual", "no", "-", "-"]


def test_task_detail_lists_every_setting() -> None:
    text = views.task_detail(sample_task(), UTC)
    assert "include:        ^1" in text
    assert "latest:         3" in text
    assert "next run:       2024-05-01 13:00:00" in text
    assert "architectures:  -" in text
    assert "referrers:      all" in text
    off = sample_task()
    off.spec.referrers = False
    assert "referrers:      off" in views.task_detail(off, UTC)
    off.spec.ClearField("referrers")
    off.spec.referrer_artifact_types.append("application/spdx+json")
    assert "referrers:      application/spdx+json" in views.task_detail(off, UTC)


def sample_execution() -> pb.Execution:
    return pb.Execution(
        id=12, task="nginx", trigger=pb.TRIGGER_CRON, status=pb.EXECUTION_STATUS_SUCCEEDED,
        started=stamp(T0), finished=stamp(T0 + 185),
        counters=ev.Counters(tags_total=5, tags_copied=2, tags_skipped=3, blobs_copied=4,
                             blobs_mounted=1, blobs_skipped=9, bytes_copied=3 * 1024**2,
                             referrers_copied=2),
    )


def test_executions_table() -> None:
    lines = views.executions_table([sample_execution()], UTC).splitlines()
    assert lines[0].split() == ["ID", "TASK", "STATUS", "TRIGGER", "STARTED", "TOOK", "TAGS",
                                "COPIED"]
    assert lines[1].split() == ["12", "nginx", "succeeded", "cron", "2024-05-01", "12:00:00",
                                "3m05s", "5/5", "(2", "copied,", "3", "skipped,", "0",
                                "failed)", "3.0", "MiB"]


def test_execution_detail_lists_tags() -> None:
    detail = pb.ExecutionDetail(execution=sample_execution(), tags=[
        ev.TagResult(tag="1.25", outcome=ev.TAG_OUTCOME_COPIED, digest="sha256:" + "0" * 64),
        ev.TagResult(tag="1.26", outcome=ev.TAG_OUTCOME_FAILED, reason="manifest unknown",
                     error_kind="not-found"),
    ])
    text = views.execution_detail(detail, UTC)
    assert "blobs:      4 copied, 1 mounted, 9 present" in text
    assert "referrers:  2 copied" in text
    assert "1.26  failed   -                    [not-found] manifest unknown" in text


def test_execution_detail_names_the_daemon_that_runs_it() -> None:
    """Several daemons on one store: which one runs it ("-" while queued for any)."""
    execution = sample_execution()
    assert "daemon:     -" in views.execution_detail(pb.ExecutionDetail(execution=execution), UTC)
    execution.daemon, execution.daemon_id = "host-2 pid 7 (#2)", 2
    text = views.execution_detail(pb.ExecutionDetail(execution=execution), UTC)
    assert "daemon:     host-2 pid 7 (#2)" in text


def test_execution_detail_of_a_glob_task_groups_by_repository() -> None:
    detail = pb.ExecutionDetail(execution=sample_execution(), tags=[
        ev.TagResult(repository="team-a/web", tag="1.0", outcome=ev.TAG_OUTCOME_COPIED),
        ev.TagResult(repository="team-a/api", tag="1.0", outcome=ev.TAG_OUTCOME_SKIPPED),
        ev.TagResult(repository="team-a/web", tag="1.1", outcome=ev.TAG_OUTCOME_COPIED),
    ])
    lines = views.execution_detail(detail, UTC).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("REPOSITORY"))
    assert [line.split()[:3] for line in lines[start + 1:]] == [
        ["team-a/api", "1.0", "skipped"], ["team-a/web", "1.0", "copied"],
        ["team-a/web", "1.1", "copied"]]


def test_execution_detail_shows_new_and_removed_repositories() -> None:
    execution = sample_execution()
    execution.repositories.CopyFrom(pb.RepositoryScope(matched=2, added=1, removed=150))
    detail = pb.ExecutionDetail(execution=execution, tags=[
        ev.TagResult(repository="team-a/web", tag="1.0", outcome=ev.TAG_OUTCOME_SKIPPED),
        ev.TagResult(repository="team-a/new", tag="1.0", outcome=ev.TAG_OUTCOME_COPIED),
    ], new_repositories=["team-a/new"],
        removed_repositories=[f"team-a/gone{n}" for n in range(99)] + ["team-a/x\x1b[2J"])
    text = views.execution_detail(detail, UTC)
    lines = text.splitlines()
    assert "repositories:  2 matched, 1 new, 150 removed" in lines
    assert lines[lines.index("new repositories:") + 1] == "  team-a/new"
    removed = lines.index("removed repositories (the first 100):")
    assert lines[removed + 1] == "  team-a/gone0" and "\x1b" not in text
    start = next(i for i, line in enumerate(lines) if line.startswith("REPOSITORY"))
    assert [line.split()[:3] for line in lines[start + 1:]] == [
        ["team-a/new", "(new)", "1.0"], ["team-a/web", "1.0", "skipped"]]


def test_plan_text_of_a_glob_task_groups_by_repository() -> None:
    plan = pb.PlanResponse(tags=[
        pb.PlannedTag(tag="team-a/web:1.0", action="copy", reason="new tag"),
        pb.PlannedTag(tag="team-a/api:1.0", action="skip", reason="unchanged")])
    text = views.plan_text("team", plan)
    assert text.startswith("task team: 1 to copy, 1 unchanged, 0 failing, 0 filtered out in 2"
                           " repositories")
    rows = [line.split()[:3] for line in text.splitlines()[3:]]
    assert rows == [["team-a/api", "1.0", "skip"], ["team-a/web", "1.0", "copy"]]


def test_took_of_a_running_execution_counts_to_now() -> None:
    from datetime import datetime

    running = pb.Execution(started=stamp(T0))
    assert views.took(running, now=datetime.fromtimestamp(T0 + 42, UTC)) == "42s"
    assert views.took(pb.Execution()) == "-"


def test_plan_text_counts_and_reasons() -> None:
    plan = pb.PlanResponse(
        tags=[pb.PlannedTag(tag="1.25", action="copy", reason="new tag"),
              pb.PlannedTag(tag="1.24", action="skip", reason="unchanged")],
        dropped=[pb.DroppedTag(tag="1.25-alpine", reason="excluded by '-alpine'")],
    )
    text = views.plan_text("nginx", plan)
    assert text.startswith("task nginx: 1 to copy, 1 unchanged, 0 failing, 1 filtered out")
    assert "1.25-alpine   excluded by '-alpine'" in text


def test_status_text() -> None:
    status = pb.Status(version="0.1.0", uptime_seconds=7380, store="/var/lib/regsync/db",
                       running=[pb.Execution(id=3, task="t", status=pb.EXECUTION_STATUS_RUNNING,
                                             counters=ev.Counters(tags_total=4, tags_copied=1))],
                       next_runs=[pb.ScheduledRun(task="t", at=stamp(T0))])
    text = views.status_text(status, UTC)
    assert "uptime:   2h03m" in text
    assert "1/4 (1 copied, 0 skipped, 0 failed)" in text
    assert "2024-05-01 12:00:00  t" in text
    assert "no scheduled runs" in views.status_text(pb.Status(version="x"), UTC)
    # several daemons on one store: this one is not the leader
    follower = views.status_text(pb.Status(version="x", daemon="h pid 7 (#2)"), UTC)
    assert "daemon:   h pid 7 (#2)" in follower
    assert "schedules: fired by another daemon on this store (the leader)" in follower


def test_stats_and_apply_and_log_lines() -> None:
    stats = views.stats_text(pb.Stats(tasks_total=3, tasks_enabled=2, bytes_copied_today=2048))
    assert "tasks:       3 (2 enabled)" in stats
    assert "2.0 KiB copied" in stats
    applied = pb.ApplyResponse(registries_created=["hub"], tasks_updated=["nginx"])
    assert views.apply_text(applied) == "registry hub created\ntask nginx updated"
    assert views.apply_text(pb.ApplyResponse()) == "nothing to change"
    line = ev.LogLine(time=T0 + 0.5, level="warning", message="index rewritten")
    assert views.log_line(line, UTC) == "2024-05-01 12:00:00 WARNING index rewritten"


def test_json_form_is_complete_and_uses_proto_names() -> None:
    data = json.loads(json.dumps(to_dict(sample_execution())))
    assert data["id"] == "12"  # int64 as a string: the protobuf JSON mapping
    assert data["status"] == "EXECUTION_STATUS_SUCCEEDED"
    assert data["parent_id"] == "0" and data["error"] == ""  # defaults present: stable keys
    assert data["counters"]["bytes_copied"] == str(3 * 1024**2)
    assert data["started"] == "2024-05-01T12:00:00Z"


# Names and messages from registries: control characters are shown escaped, never sent raw ------
ESC_TAG = "1.0\x1b[2J"
ESC_REASON = "denied\r\nINFO forged\x1b]8;;http://evil.example\x07\u202e"


def assert_escaped(text: str) -> None:
    assert not any(ord(c) < 0x20 and c != "\n" for c in text), repr(text)
    assert "\x1b" not in text and "\u202e" not in text and "\x9b" not in text


def test_tag_tables_escape_control_characters() -> None:
    detail = pb.ExecutionDetail(execution=sample_execution(), tags=[
        ev.TagResult(tag=ESC_TAG, outcome=ev.TAG_OUTCOME_FAILED, reason=ESC_REASON)])
    detail.execution.error = f"1 failed; first: {ESC_REASON}"
    text = views.execution_detail(detail, UTC)
    assert_escaped(text)
    assert "1.0\\x1b[2J" in text and "denied\\r\\nINFO forged\\x1b]8;;" in text
    assert not any(line.startswith("INFO") for line in text.splitlines())  # no forged line
    plan = pb.PlanResponse(tags=[pb.PlannedTag(tag=ESC_TAG, action="copy")],
                           dropped=[pb.DroppedTag(tag=ESC_TAG, reason=ESC_REASON)])
    assert_escaped(views.plan_text("nginx", plan))


def test_log_lines_progress_and_summaries_escape_control_characters() -> None:
    line = ev.LogLine(time=T0, level="warning", message="red \x1b[31mtext\x9b0m\nforged")
    shown = views.log_line(line, UTC)
    assert shown == "2024-05-01 12:00:00 WARNING red \\x1b[31mtext\\x9b0m\\nforged"
    result = ev.TagResult(tag=ESC_TAG, outcome=ev.TAG_OUTCOME_FAILED, reason=ESC_REASON)
    assert_escaped(progress.tag_line(result))
    detail = pb.ExecutionDetail(execution=sample_execution(), tags=[result])
    detail.execution.error = ESC_REASON
    assert_escaped(progress.summary(detail))
    assert_escaped(progress.progress_line(ev.Counters(), rate=0, current_tag=ESC_TAG))
    verdict = pb.TestRegistryResponse(ok=False, reachable=True, message=ESC_REASON)
    assert_escaped(views.registry_test("hub", verdict))


def test_plan_text_lists_what_a_prune_would_delete_apart_from_the_copies() -> None:
    plan = pb.PlanResponse(
        tags=[pb.PlannedTag(tag="1.25", action="copy", reason="new tag")],
        deletions=[
            pb.PlannedDeletion(tag="1.20", digest="sha256:" + "1" * 64,
                               reason="not in the rule's selection"),
            pb.PlannedDeletion(tag="stable", digest="sha256:" + "2" * 64,
                               reason="not in the rule's selection", blocked="shares it"),
        ],
        prune_notes=["prune stopped: it would delete 2 of 3 target tags"],
    )
    text = views.plan_text("nginx", plan)
    assert text.startswith("task nginx: 1 to copy, 0 unchanged, 0 failing, 0 filtered out;"
                           " 2 target tags to prune after the copies")
    assert "TO PRUNE" in text and "1.20" in text
    assert "(by digest only: shares it)" in text
    assert "note: prune stopped: it would delete 2 of 3 target tags" in text


def test_execution_detail_shows_pruned_tags() -> None:
    execution = sample_execution()
    execution.counters.tags_deleted = 1
    detail = pb.ExecutionDetail(execution=execution, tags=[
        ev.TagResult(tag="1.20", outcome=ev.TAG_OUTCOME_DELETED, digest="sha256:" + "0" * 64,
                     reason="pruned: not in the rule's selection"),
    ])
    text = views.execution_detail(detail, UTC)
    assert "pruned:     1 target tags deleted" in text
    assert "1.20  deleted" in text and "pruned: not in the rule's selection" in text


def test_task_detail_says_whether_it_prunes() -> None:
    spec = pb.TaskSpec(name="t", prune=True)
    assert "prune:" in views.task_detail(pb.Task(spec=spec))
    assert "yes, at most 50% a run" in views.task_detail(pb.Task(spec=spec))
    assert "prune:          no" in views.task_detail(pb.Task(spec=pb.TaskSpec(name="t")))
