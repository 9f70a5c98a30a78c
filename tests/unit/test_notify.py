"""Webhook rules, payloads, signatures, backoff and the config section: pure."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from regsync.daemon.config import ConfigProblems, parse_config
from regsync.daemon.engine.events import Counters, Outcome, TagResult
from regsync.daemon.notify.payload import Notice, encode, json_body, signature, slack_body
from regsync.daemon.notify.rules import Stale, backoff, event_for, stale_tasks, wants
from regsync.daemon.settings import Endpoint, NotificationSettings, SyncRule
from regsync.daemon.store.records import ExecutionRecord, ExecutionStatus, TaskRecord, Trigger
from support.syncrun import load

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
RECORD = ExecutionRecord(
    id=7, task="nginx", trigger=Trigger.CRON, status=ExecutionStatus.FAILED,
    started=NOW - timedelta(seconds=90), finished=NOW,
    counters=Counters(tags_total=12, tags_copied=1, tags_skipped=1, tags_failed=10),
    error="10 failed; first: denied",
)
FAILED = tuple(TagResult("nginx", f"1.{i}", Outcome.FAILED, reason=f"denied <@here> {i}",
                         error_kind="auth") for i in range(12))


def test_events_and_filters() -> None:
    assert [event_for(s) for s in ExecutionStatus] == [
        None, None, "execution.succeeded", "execution.failed", "execution.stopped", None]
    hook = NotificationSettings("h", "https://x.example/", ("execution.failed",), ("nginx",))
    assert wants(hook, "execution.failed", "nginx")
    assert not wants(hook, "execution.failed", "redis")
    assert not wants(hook, "execution.succeeded", "nginx")
    every = NotificationSettings("h", "https://x.example/", ("execution.failed",))
    assert wants(every, "execution.failed", "redis")


def test_backoff_schedule_then_give_up() -> None:
    assert [backoff(n) for n in range(1, 5)] == [1.0, 4.0, 15.0, None]
    assert backoff(0) is None
    assert [backoff(n, schedule=(0.5,)) for n in (1, 2)] == [0.5, None]


def test_json_payload_names_the_execution_and_its_first_failures() -> None:
    body = json_body(Notice("execution.failed", "nginx", RECORD, FAILED),
                     panel_url="https://panel.example/", now=NOW)
    execution = body["execution"]
    assert isinstance(execution, dict)
    assert body["event"] == "execution.failed" and body["task"] == "nginx"
    assert execution["id"] == 7 and execution["status"] == "failed"
    assert execution["duration_seconds"] == 90
    assert execution["counters"]["tags_failed"] == 10
    assert [t["tag"] for t in execution["failed_tags"]] == [f"1.{i}" for i in range(10)]
    assert execution["failed_tags"][0] == {
        "tag": "1.0", "reason": "denied <@here> 0", "error_kind": "auth"}
    assert body["link"] == "https://panel.example/executions/7"
    assert json_body(Notice("execution.failed", "nginx", RECORD), panel_url=None,
                     now=NOW)["link"] is None


def test_stale_payload_and_slack_text_escape_mentions() -> None:
    stale = Notice("task.stale", "a&b", stale=Stale("a&b", None, timedelta(hours=1)))
    body = json_body(stale, panel_url="http://p:8080", now=NOW)
    assert body["last_success"] is None and body["period_seconds"] == 3600
    assert body["link"] == "http://p:8080/executions?task=a%26b"
    text = slack_body(Notice("execution.failed", "nginx", RECORD, FAILED), panel_url=None)["text"]
    assert isinstance(text, str)
    assert "<@here>" not in text and "&lt;@here&gt;" in text
    assert text.startswith("regsync: task nginx execution 7 failed: 1 copied, 1 unchanged")
    assert "pruned" not in text
    pruned = replace(RECORD, counters=Counters(tags_copied=1, tags_deleted=3))
    text = slack_body(Notice("execution.succeeded", "nginx", pruned), panel_url=None)["text"]
    assert isinstance(text, str) and ", 3 target tags pruned" in text
    assert json_body(Notice("execution.succeeded", "nginx", pruned), panel_url=None,
                     now=NOW)["execution"]["counters"]["tags_deleted"] == 3  # type: ignore[index]


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = encode(Notice("execution.failed", "nginx", RECORD), format="json", panel_url=None,
                  now=NOW)
    assert json.loads(body)["task"] == "nginx"
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) != signature("k", body + b" ")
    assert signature("k", body) != signature("j", body)


def _task(name: str, cron: str | None, enabled: bool = True) -> TaskRecord:
    return TaskRecord(SyncRule(name, Endpoint("s", "a"), Endpoint("d", "a"), enabled=enabled,
                               cron_expression=cron))


def test_stale_means_no_success_for_over_twice_the_period() -> None:
    hourly = "0 * * * *"
    tasks = [_task("fresh", hourly), _task("stale", hourly), _task("never", hourly),
             _task("new", hourly), _task("manual", None), _task("off", hourly, enabled=False)]
    successes = {"fresh": NOW - timedelta(minutes=119), "stale": NOW - timedelta(minutes=121),
                 "manual": NOW - timedelta(days=9), "off": NOW - timedelta(days=9)}
    created = {t.name: NOW - timedelta(days=30) for t in tasks} | {"new": NOW}
    found = stale_tasks(tasks, successes, created, NOW)
    assert [(s.task, s.last_success) for s in found] == [
        ("stale", NOW - timedelta(minutes=121)), ("never", None)]
    assert found[0].period == timedelta(hours=1)


def _hooks(entries: list[dict[str, object]]) -> tuple[NotificationSettings, ...]:
    data = {"registries": {}, "sync_rules": [], "notifications": entries}
    return load(data).notifications


def test_config_section_parses_and_reports_every_problem() -> None:
    [hook] = _hooks([{"name": "chat", "url": "https://hooks.example/T0/B0?x=1", "format": "slack",
                      "events": ["task.stale", "task.stale"], "secret": "topsecret"}])
    assert hook == NotificationSettings("chat", "https://hooks.example/T0/B0?x=1",
                                        ("task.stale",), (), "topsecret", "slack")
    assert "topsecret" not in repr(hook)
    with pytest.raises(ConfigProblems) as caught:
        _hooks([
            {"name": "a", "url": "https://user:pw@x.example/", "events": ["execution.failed"]},
            {"name": "a b", "url": "gopher://x", "events": ["execution.fail"], "format": "xml"},
            {"name": "c", "url": "https://x.example/"},
            {"name": "d", "url": "https://x.example/", "events": ["task.stale"], "extra": 1},
            {"name": "d", "url": "https://x.example/", "events": ["task.stale"]},
        ])
    problems = "\n".join(caught.value.problems)
    assert "notifications[0]: url: must not contain credentials" in problems
    assert "pw" not in problems
    assert "notifications[1]: name: invalid name 'a b'" in problems
    assert "notifications[1]: url: must start with https:// or http://" in problems
    assert "notifications[1]: events[0]: unknown event 'execution.fail'" in problems
    assert "notifications[1]: format: unknown format 'xml'" in problems
    assert "notifications[2]: events: is required" in problems
    assert "notifications[3]: extra: unknown key" in problems
    assert "notifications[4]: name: duplicate webhook name (also notifications[3])" in problems
    assert len(caught.value.problems) == 8


def test_the_example_files_webhooks_load_once_uncommented() -> None:
    example = (Path(__file__).parents[2] / "configs" / "sync.example.yaml").read_text()
    start = example.index("# notifications:")
    text = example[:start] + "\n".join(
        line[2:] for line in example[start:].splitlines() if line.startswith("# "))
    env = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
           "AUDIT_HOOK_SECRET": "s3"}
    config = parse_config(text, env=env)
    chat, audit = config.notifications
    assert (chat.name, chat.format, chat.url) == ("ops-chat", "slack", env["SLACK_WEBHOOK_URL"])
    assert audit.tasks == ("nginx",) and audit.secret == "s3" and audit.format == "json"
