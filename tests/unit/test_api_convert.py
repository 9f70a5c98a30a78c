"""Protobuf <-> domain conversions and the error -> status mapping (pure, no server)."""

from __future__ import annotations

import dataclasses
import datetime
import re
from pathlib import Path

import grpc
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from regsync.daemon.api import inbound, outbound
from regsync.daemon.api.bridge import PortalClosed
from regsync.daemon.api.notifications import notification_settings
from regsync.daemon.api.status import INTERNAL_MESSAGE, status_for
from regsync.daemon.base.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    DuplicateItemError,
    NetworkError,
    RateLimitError,
    RemoteServerError,
    UnknownItemError,
)
from regsync.daemon.engine.events import Counters, LogEvent, Outcome, TagResult
from regsync.daemon.engine.filters import TagSelection
from regsync.daemon.engine.plan import TagPlan, Verb
from regsync.daemon.runtime.task_inputs import resolved
from regsync.daemon.runtime.watch import WatchItem
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule, TagFilter
from regsync.daemon.store.records import (
    ApplyResult,
    ConnectionVerdict,
    ExecutionRecord,
    ExecutionStatus,
    RegistryRecord,
    Stats,
    TaskRecord,
    Trigger,
)
from regsync.daemon.values.prunelimit import DEFAULT_LIMIT, PruneLimit
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from support.certs import self_signed

UTC = datetime.UTC
SECRET = "s3cret-pa55"
RULE = SyncRule(
    name="nginx",
    source=Endpoint("hub", "library/nginx"),
    target=Endpoint("local", "mirror/nginx"),
    tags=TagFilter(include=(r"^1\.\d+$",), exclude=("-rc",), semver=">=1.20 <2", latest=3),
    architectures=("amd64", "arm64"),
    platforms=("linux/arm/v7",),
    enabled=True,
    cron_expression="0 2 * * *",
)
REGISTRIES = ("hub", "local")


def problems(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return str(error.value).splitlines()


# Registries -------------------------------------------------------------------------------------


def test_registry_settings_round_trip(tmp_path: Path) -> None:
    ca, _ = self_signed(tmp_path)
    original = RegistrySettings(
        "hub", "https://hub.example:5000", "alice", None, insecure=True, ca_file=str(ca), qps=2.5
    )
    spec = pb.RegistrySpec(name="hub", url="https://hub.example:5000", username="alice",
                           password=SECRET, insecure=True, ca_file=str(ca), qps=2.5)
    settings, keep = inbound.registry_settings(spec)
    assert settings == dataclasses.replace(original, password=SECRET) and not keep
    assert settings.password == SECRET


def test_registry_url_is_normalised_like_the_yaml() -> None:
    settings, _ = inbound.registry_settings(pb.RegistrySpec(name="r", url="HTTP://Host:80/"))
    assert settings.url == "http://host:80" and settings.plain_http


def test_password_absent_present_empty_and_literal() -> None:
    kept = pb.RegistrySpec(name="hub", url="https://hub", username="u")
    settings, keep = inbound.registry_settings(kept, update=True)
    assert (settings.password, keep) == (None, True)
    settings, keep = inbound.registry_settings(
        pb.RegistrySpec(name="hub", url="https://hub", password=""), update=True
    )
    assert (settings.password, keep) == (None, False)
    # an API password is literal: stored as the template of those characters, which the daemon
    # resolves to them again, never to its environment variable
    reference = pb.RegistrySpec(
        name="hub", url="https://hub", username="u", password="${HUB_PASSWORD}"
    )
    settings, keep = inbound.registry_settings(reference, update=True)
    assert (settings.password, keep) == ("$${HUB_PASSWORD}", False)
    assert resolved(settings).password == "${HUB_PASSWORD}"


def test_registry_errors_name_api_fields_and_hide_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        inbound.registry_settings(pb.RegistrySpec(name="x", url="https://x/v2/", qps=-1))
    assert problems(info)[1:] == [
        "registry.url: must not have a path, got '/v2/' (regsync adds /v2/ itself)",
        "registry.qps: must be a number greater than 0, got -1.0",
    ]
    with pytest.raises(ConfigError) as info:
        inbound.registry_settings(pb.RegistrySpec(name="x", url="https://x", password=SECRET))
    assert str(info.value).startswith("registry.username: is required when password is set")
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError, match=r"^registry\.name: is required$"):
        inbound.registry_settings(pb.RegistrySpec(url="https://x"))
    with pytest.raises(ConfigError, match=r"^registry\.url: is required$"):
        inbound.registry_settings(pb.RegistrySpec(name="x"))


def test_registry_reply_says_password_set_never_the_password() -> None:
    settings = RegistrySettings("hub", "https://hub", "u", SECRET, qps=1.0)
    reply = outbound.registry(RegistryRecord(settings, used_by=("a", "b")))
    assert reply.password_set and list(reply.used_by) == ["a", "b"]
    assert SECRET not in str(reply) and SECRET not in reply.SerializeToString().decode("latin-1")
    anonymous = outbound.registry(RegistryRecord(RegistrySettings("hub", "https://hub")))
    assert not anonymous.password_set and anonymous.qps == 0 and anonymous.ca_file == ""


# Tasks ------------------------------------------------------------------------------------------


def test_sync_rule_round_trip() -> None:
    assert inbound.sync_rule(outbound.task_spec(RULE), REGISTRIES) == RULE
    minimal = SyncRule("m", Endpoint("hub", "a"), Endpoint("local", "b"), enabled=False)
    assert inbound.sync_rule(outbound.task_spec(minimal), REGISTRIES) == minimal
    unsigned = dataclasses.replace(minimal, referrers=False)
    assert inbound.sync_rule(outbound.task_spec(unsigned), REGISTRIES) == unsigned
    older_client = outbound.task_spec(unsigned)
    older_client.ClearField("referrers")  # a client that predates the field: the default
    assert inbound.sync_rule(older_client, REGISTRIES).referrers is True
    sboms = dataclasses.replace(minimal, referrer_types=("application/spdx+json",))
    assert inbound.sync_rule(outbound.task_spec(sboms), REGISTRIES) == sboms
    with pytest.raises(ConfigError, match=r"task.referrers.artifact_types\[0\]: invalid artifact"):
        inbound.sync_rule(pb.TaskSpec(name="x", source=pb.Endpoint(registry="hub", repository="a"),
                                      target=pb.Endpoint(registry="local", repository="b"),
                                      referrer_artifact_types=["no type"]), REGISTRIES)


def test_a_pruning_task_round_trips_and_a_bad_limit_names_its_field() -> None:
    minimal = SyncRule("m", Endpoint("hub", "a"), Endpoint("local", "b"))
    assert outbound.task_spec(minimal).prune_max == ""  # the default, 50%
    for limit in (PruneLimit(3), PruneLimit(20, percent=True), DEFAULT_LIMIT):
        pruning = dataclasses.replace(minimal, prune=True, prune_max=limit)
        spec = outbound.task_spec(pruning)
        assert spec.prune and inbound.sync_rule(spec, REGISTRIES) == pruning
    bad = outbound.task_spec(minimal)
    bad.prune_max = "200%"
    with pytest.raises(ConfigError, match=r"task\.prune_max: a percentage is at most 100%"):
        inbound.sync_rule(bad, REGISTRIES)
    bad.prune_max = "${LIMIT}"  # literal, never the environment
    with pytest.raises(ConfigError, match=r"task\.prune_max: expected a number"):
        inbound.sync_rule(bad, REGISTRIES)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="$a{}()^.*\\-_:1", max_size=12))
def test_api_strings_are_literal_never_substituted(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error:
        return
    rule = dataclasses.replace(RULE, name=f"n{pattern}", tags=TagFilter(include=(pattern,)))
    assert inbound.sync_rule(outbound.task_spec(rule), REGISTRIES) == rule


def test_every_task_problem_is_reported_naming_the_field() -> None:
    spec = outbound.task_spec(RULE)
    spec.source.repository = "Library/Nginx"
    spec.target.registry = "lokal"
    del spec.tags.include[:]
    spec.tags.include.extend(["ok", "(unclosed"])
    spec.platforms.append("linux")
    spec.cron_expression = "0 2 * *"
    with pytest.raises(ConfigError) as info:
        inbound.sync_rule(spec, REGISTRIES)
    lines = problems(info)
    assert lines[0] == "5 configuration problems:"
    fields = [line.split(":", 1)[0] for line in lines[1:]]
    assert fields == [
        "task.source.repository",
        "task.target.registry",
        "task.tags.include[1]",
        "task.platforms[1]",
        "task.cron_expression",
    ]
    assert "it must be lowercase" in lines[1] and "did you mean 'local'?" in lines[2]


def test_specs_are_validated_as_documents_never_as_yaml_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tasks, registries and webhooks reach the same validation as the file without a YAML dump
    and re-parse (issue 11): with YAML gone, every spec still converts and is still checked."""

    def no_yaml(*args: object, **kwargs: object) -> object:
        raise AssertionError("an API spec went through YAML text")

    for name in ("dump", "safe_dump", "load", "safe_load"):
        monkeypatch.setattr(yaml, name, no_yaml)
    assert inbound.sync_rule(outbound.task_spec(RULE), REGISTRIES) == RULE
    settings, _ = inbound.registry_settings(pb.RegistrySpec(name="hub", url="https://Hub.example"))
    assert settings.url == "https://hub.example"
    hook, _ = notification_settings(pb.NotificationSpec(
        name="ops", url="https://hooks.example/x", events=["execution.failed"]))
    assert hook.events == ("execution.failed",)
    with pytest.raises(ConfigError, match=r"^task\.cron_expression: "):
        inbound.sync_rule(pb.TaskSpec(name="t", source=pb.Endpoint(registry="hub", repository="a"),
                                      target=pb.Endpoint(registry="local", repository="b"),
                                      cron_expression="0 2 * *"), REGISTRIES)


def test_task_without_name_or_target() -> None:
    spec = outbound.task_spec(RULE)
    spec.ClearField("name")
    spec.ClearField("target")
    with pytest.raises(ConfigError) as info:
        inbound.sync_rule(spec, REGISTRIES)
    assert problems(info)[1:] == [
        "task.name: is required",
        "task.target: is required (a mapping with registry and repository)",
    ]
    same = outbound.task_spec(dataclasses.replace(RULE, target=RULE.source))
    with pytest.raises(ConfigError, match=r"^task\.target: is the same registry and repository"):
        inbound.sync_rule(same, REGISTRIES)


def test_preview_rule_needs_only_what_it_uses() -> None:
    filters = pb.TaskSpec(tags=pb.TagFilter(semver=">=1.2"))
    rule = inbound.preview_rule(filters, [], listing=False)
    assert rule.tags.semver == ">=1.2" and rule.name == "preview"
    with pytest.raises(ConfigError, match=r"^spec\.source: is required"):
        inbound.preview_rule(filters, [], listing=True)
    filters.source.CopyFrom(pb.Endpoint(registry="hub", repository="library/nginx"))
    assert inbound.preview_rule(filters, REGISTRIES, listing=True).source == RULE.source
    filters.tags.semver = ">=one"
    with pytest.raises(ConfigError, match=r"^spec\.tags\.semver: "):
        inbound.preview_rule(filters, REGISTRIES, listing=True)


def test_task_reply() -> None:
    last = ExecutionRecord(7, "nginx", Trigger.CRON, ExecutionStatus.RUNNING, _at(1))
    reply = outbound.task(TaskRecord(RULE, next_run=_at(2), last_execution=last, running=True))
    assert reply.spec == outbound.task_spec(RULE) and reply.running
    assert reply.next_run.ToDatetime(UTC) == _at(2) and reply.last_execution.id == 7
    bare = outbound.task(TaskRecord(RULE))
    assert not bare.HasField("next_run") and not bare.HasField("last_execution")


# Executions, events -----------------------------------------------------------------------------


def _at(hour: int) -> datetime.datetime:
    return datetime.datetime(2024, 5, 1, hour, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize("trigger", list(Trigger))
@pytest.mark.parametrize("status", list(ExecutionStatus))
def test_execution_round_trip(trigger: Trigger, status: ExecutionStatus) -> None:
    counters = Counters(*range(1, 9))
    record = ExecutionRecord(3, "t", trigger, status, _at(1), _at(2), counters, "why", 2)
    assert inbound.execution_record(outbound.execution(record)) == record
    running = ExecutionRecord(4, "t", trigger, status, _at(1))
    message = outbound.execution(running)
    assert not message.HasField("finished") and message.parent_id == 0
    assert inbound.execution_record(message) == running


def test_naive_datetimes_are_utc() -> None:
    naive = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert outbound.timestamp(naive).ToDatetime(UTC) == naive.replace(tzinfo=UTC)
    berlin = datetime.timezone(datetime.timedelta(hours=2))
    assert outbound.timestamp(_at(5).astimezone(berlin)).ToDatetime(UTC) == _at(5)


@pytest.mark.parametrize(("outcome", "expected"), [
    (Outcome.COPIED, ev.TAG_OUTCOME_COPIED),
    (Outcome.SKIPPED, ev.TAG_OUTCOME_SKIPPED),
    (Outcome.FAILED, ev.TAG_OUTCOME_FAILED),
    (Outcome.DELETED, ev.TAG_OUTCOME_DELETED),
])
def test_tag_result_carries_every_field(
    outcome: Outcome, expected: ev.TagOutcome.ValueType
) -> None:
    result = TagResult("r", "1.0", outcome, "sha256:ab", "index rewritten", "auth")
    assert outbound.tag_result(result) == ev.TagResult(
        rule="r", tag="1.0", outcome=expected, digest="sha256:ab", reason="index rewritten",
        error_kind="auth")


def test_watch_event_sets_exactly_the_given_kind() -> None:
    record = ExecutionRecord(1, "t", Trigger.MANUAL, ExecutionStatus.RUNNING, _at(1))
    kinds = {
        "execution": WatchItem(1, "t", execution=record),
        "tag": WatchItem(1, "t", tag=TagResult("t", "1", Outcome.SKIPPED)),
        "log": WatchItem(1, "t", log=LogEvent("warning", "slow", time=5.5)),
        "progress": WatchItem(1, "t", progress=Counters(bytes_copied=9), current_tag="1.2"),
    }
    for kind, item in kinds.items():
        event = outbound.watch_event(item)
        assert event.WhichOneof("event") == kind
        assert (event.execution_id, event.task, event.current_tag) == (1, "t", item.current_tag)
    log = outbound.watch_event(kinds["log"]).log
    assert (log.time, log.level, log.message) == (5.5, "warning", "slow")
    assert outbound.watch_event(kinds["progress"]).progress.bytes_copied == 9
    pruned = WatchItem(1, "t", progress=Counters(tags_deleted=4))
    assert outbound.watch_event(pruned).progress.tags_deleted == 4


def test_records_with_matching_field_names_map_every_field() -> None:
    stats = Stats(*range(1, 11))
    assert [getattr(outbound.stats(stats), f.name) for f in dataclasses.fields(stats)] == list(
        range(1, 11)
    )
    verdict = ConnectionVerdict(False, True, False, "registry/2.0", "refused", "auth", 3.5)
    reply = outbound.verdict(verdict)
    assert (reply.ok, reply.reachable, reply.auth_ok, reply.latency_ms) == (False, True, False, 3.5)
    assert (reply.api_version, reply.message, reply.error_kind) == (
        "registry/2.0",
        "refused",
        "auth",
    )
    applied = outbound.apply_response(ApplyResult(("a",), ("b",), ("c",), ("d",)))
    assert [list(applied.registries_created), list(applied.tasks_updated)] == [["a"], ["d"]]


def test_plan_and_preview() -> None:
    selection = TagSelection(kept=("1.0", "1.1"), dropped=(("1.0-rc", "excluded by 'rc'"),))
    plans = [TagPlan("1.0", Verb.SKIP, "unchanged", "sha256:a", "sha256:a"),
             TagPlan("1.1", Verb.COPY, "new tag; referrers: 2 to copy", "sha256:b", referrers=2)]
    plan = outbound.plan_response(selection, plans)
    assert (plan.tags[0].tag, plan.tags[0].target_digest) == ("1.0", "sha256:a")
    assert [t.referrers for t in plan.tags] == [0, 2]
    assert (plan.dropped[0].tag, plan.dropped[0].reason) == ("1.0-rc", "excluded by 'rc'")
    assert list(outbound.preview_response(selection).kept) == ["1.0", "1.1"]


def test_execution_query_and_log_window() -> None:
    query = inbound.execution_query(pb.ListExecutionsRequest())
    assert (query.task, query.statuses, query.limit, query.before_id) == (None, (), 50, None)
    request = pb.ListExecutionsRequest(
        task="t", status=[pb.EXECUTION_STATUS_FAILED], limit=9000, before_id=5
    )
    query = inbound.execution_query(request)
    assert (query.task, query.statuses, query.limit, query.before_id) == (
        "t",
        (ExecutionStatus.FAILED,),
        500,
        5,
    )
    with pytest.raises(ConfigError, match=r"^status\[1\]: not a valid execution status"):
        inbound.execution_query(
            pb.ListExecutionsRequest(
                status=[pb.EXECUTION_STATUS_QUEUED, pb.EXECUTION_STATUS_UNSPECIFIED]
            )
        )
    with pytest.raises(ConfigError, match=r"^limit: must not be negative"):
        inbound.execution_query(pb.ListExecutionsRequest(limit=-1))
    # "all" is one reply's worth: a page, capped whatever is asked (a reply stays under 4 MiB)
    assert inbound.log_window(pb.LogsRequest(offset=3)) == (3, 5000)
    assert inbound.log_window(pb.LogsRequest(limit=2**31 - 1)) == (0, 5000)
    assert inbound.log_window(pb.LogsRequest(limit=7)) == (0, 7)
    with pytest.raises(ConfigError, match=r"^offset: must not be negative"):
        inbound.log_window(pb.LogsRequest(offset=-3))


# Status codes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("task.name: is required"), grpc.StatusCode.INVALID_ARGUMENT),
        (UnknownItemError("no task 'x'"), grpc.StatusCode.NOT_FOUND),
        (DuplicateItemError("task 'x' exists"), grpc.StatusCode.ALREADY_EXISTS),
        (ConflictError("task 'x' is running"), grpc.StatusCode.FAILED_PRECONDITION),
        (AuthError("refused", registry="hub"), grpc.StatusCode.FAILED_PRECONDITION),
        (RemoteServerError("500", registry="hub"), grpc.StatusCode.FAILED_PRECONDITION),
        # a registry's trouble is not the daemon's: UNAVAILABLE is kept for "regsyncd is down"
        (RemoteServerError("503", temporary=True), grpc.StatusCode.FAILED_PRECONDITION),
        (RateLimitError("429", registry="hub"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (NetworkError("refused", registry="hub"), grpc.StatusCode.FAILED_PRECONDITION),
        (PortalClosed(), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_status_for_regsync_errors_keeps_the_message(error: Exception, code: object) -> None:
    assert status_for(error) == (code, str(error))


def test_status_for_anything_else_is_internal_and_says_nothing() -> None:
    assert status_for(KeyError(SECRET)) == (grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
    assert SECRET not in INTERNAL_MESSAGE
