"""Metric label mapping, counter increments, schedule periods and the listen address: pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.engine.events import Counters
from regsync.daemon.monitor.labels import (
    code_label,
    increments,
    merged,
    method_label,
    schedule_period,
)
from regsync.daemon.monitor.metrics import Metrics, parse_metrics_listen
from regsync.daemon.settings import Endpoint, SyncRule
from regsync.daemon.store.records import ExecutionRecord, ExecutionStatus, TaskRecord, Trigger


def test_methods_and_codes_stay_a_bounded_set() -> None:
    assert [method_label(m) for m in ("get", "HEAD", "Put", "PROPFIND", "x" * 100)] == [
        "GET", "HEAD", "PUT", "OTHER", "OTHER"]
    assert [code_label(c) for c in (None, 200, 599, 600, 99, -1)] == [
        "error", "200", "599", "other", "other", "other"]


def test_increments_only_grow_and_merge_keeps_the_high_water_mark() -> None:
    before = Counters(tags_copied=2, tags_skipped=1, bytes_copied=100)
    after = Counters(tags_copied=3, tags_skipped=1, tags_failed=1, bytes_copied=250)
    grown = increments(before, after)
    assert grown.by_outcome() == {"copied": 1, "skipped": 0, "failed": 1, "deleted": 0}
    assert grown.bytes == 150
    stale = Counters(tags_copied=1, bytes_copied=50)  # an older snapshot arriving late
    assert increments(after, stale).by_outcome() == {"copied": 0, "skipped": 0, "failed": 0,
                                                     "deleted": 0}
    pruned = Counters(tags_copied=3, tags_skipped=1, tags_failed=1, bytes_copied=250,
                      tags_deleted=2)
    assert increments(after, pruned).by_outcome()["deleted"] == 2
    assert merged(after, stale) == after


@pytest.mark.parametrize(("cron", "period"), [
    ("*/5 * * * *", timedelta(minutes=5)),
    ("0 2 * * *", timedelta(days=1)),
    ("0 2 * * 1-5", timedelta(days=3)),  # Friday 02:00 -> Monday 02:00
])
def test_schedule_period_is_the_longest_gap_around_now(cron: str, period: timedelta) -> None:
    for day in range(1, 8):  # whatever the weekday
        assert schedule_period(cron, datetime(2026, 6, day, 12, 0, tzinfo=UTC)) == period


def test_metrics_listen_defaults_to_loopback_and_refuses_names() -> None:
    assert parse_metrics_listen("9464") == ("127.0.0.1", 9464)
    assert parse_metrics_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert parse_metrics_listen("[::1]:9464") == ("::1", 9464)
    assert parse_metrics_listen("localhost:0") == ("localhost", 0)
    for bad in ("", "x", "host:abc", "1.2.3.4:70000", "example.com:9464"):
        with pytest.raises(ConfigError, match="--metrics-listen"):
            parse_metrics_listen(bad)


def test_registry_observer_counts_by_bounded_labels() -> None:
    metrics = Metrics("0.1.0")
    metrics.request("hub", "get", 429)
    metrics.request("hub", "GET", 429)
    metrics.request("hub", "HEAD", None)
    metrics.retry("hub")
    metrics.ratelimit("hub", 76)
    value = metrics.registry.get_sample_value
    assert value("regsync_registry_requests_total",
                 {"registry": "hub", "method": "GET", "code": "429"}) == 2
    assert value("regsync_registry_requests_total",
                 {"registry": "hub", "method": "HEAD", "code": "error"}) == 1
    assert value("regsync_registry_retries_total", {"registry": "hub"}) == 1
    assert value("regsync_registry_ratelimit_remaining", {"registry": "hub"}) == 76


def _task(name: str, cron: str | None) -> TaskRecord:
    return TaskRecord(SyncRule(name, Endpoint("s", "a"), Endpoint("d", "a"), cron_expression=cron))


def test_refresh_reads_the_store_and_forgets_deleted_tasks() -> None:
    metrics = Metrics("0.1.0")
    value = metrics.registry.get_sample_value
    now = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    done = ExecutionRecord(1, "a", Trigger.CRON, ExecutionStatus.FAILED, now, now)
    tasks = [_task("a", "0 * * * *"), _task("b", None)]
    metrics.refresh([TaskRecord(tasks[0].rule, last_execution=done), tasks[1]],
                    {"a": now - timedelta(hours=2)}, now)
    assert value("regsync_task_schedule_period_seconds", {"task": "a"}) == 3600
    assert value("regsync_task_schedule_period_seconds", {"task": "b"}) is None
    assert value("regsync_task_last_status", {"task": "a", "status": "failed"}) == 1
    assert value("regsync_task_last_status", {"task": "a", "status": "succeeded"}) == 0
    assert value("regsync_task_last_success_timestamp_seconds", {"task": "a"}) == (
        now - timedelta(hours=2)).timestamp()
    metrics.refresh([tasks[1]], {}, now)  # task a deleted
    assert value("regsync_task_schedule_period_seconds", {"task": "a"}) is None
    assert value("regsync_task_last_status", {"task": "a", "status": "failed"}) is None
    assert value("regsync_task_last_success_timestamp_seconds", {"task": "a"}) is None
