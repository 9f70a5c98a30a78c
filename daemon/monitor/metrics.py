"""The daemon's Prometheus metrics and the `/metrics` endpoint of `serve --metrics-listen`.

Fed from three places, all on the trio thread: the event hub (every execution record, progress
tick), the registry transport's observer hook (requests, retries, quota) and a periodic read of
the store (schedules, last successes survive restarts). A scrape runs in prometheus-client's own
HTTP thread and only reads the values. Label rules: `labels.py`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from ..base.errors import ConfigError
from ..engine.events import Counters
from ..runtime.watch import WatchItem
from ..store.records import ExecutionRecord, ExecutionStatus, TaskRecord
from .labels import code_label, increments, merged, method_label, schedule_period

log = logging.getLogger("regsync.metrics")

#: seconds: a no-op re-sync takes ~1 s, a first mirror of a big repository hours
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600, 86400)
_TERMINAL = tuple(s for s in ExecutionStatus if not s.active)


class Metrics:
    """Every metric of one daemon, in its own registry (several daemons can share a process)."""

    def __init__(self, version: str) -> None:
        self.registry = r = CollectorRegistry()
        Info("regsync_build", "regsync version", registry=r).info({"version": version})
        self.last_success = Gauge(
            "regsync_task_last_success_timestamp_seconds",
            "When the task's newest succeeded execution finished (Unix time)", ["task"], registry=r)
        self.last_status = Gauge(
            "regsync_task_last_status",
            "1 for the status the task's newest ended execution had, 0 for the others",
            ["task", "status"], registry=r)
        self.period = Gauge(
            "regsync_task_schedule_period_seconds",
            "The longest gap between the task's cron fire times (scheduled tasks only)",
            ["task"], registry=r)
        self.executions = Counter(
            "regsync_executions", "Ended executions", ["task", "status"], registry=r)
        self.tags = Counter("regsync_tags", "Tags ended", ["task", "outcome"], registry=r)
        self.bytes = Counter(
            "regsync_bytes_copied", "Blob bytes written to targets", ["task"], registry=r)
        self.duration = Histogram(
            "regsync_execution_duration_seconds", "Execution wall time, start to end", ["task"],
            buckets=DURATION_BUCKETS, registry=r)
        self.running = Gauge("regsync_executions_running", "Executions queued or running",
                             registry=r)
        self.requests = Counter(
            "regsync_registry_requests", "Requests sent to registries, by answer",
            ["registry", "method", "code"], registry=r)
        self.retries = Counter(
            "regsync_registry_retries", "Failed attempts retried", ["registry"], registry=r)
        self.quota = Gauge(
            "regsync_registry_ratelimit_remaining",
            "Pulls left as the registry last announced (Docker Hub's RateLimit-Remaining)",
            ["registry"], registry=r)
        self._seen: dict[int, Counters] = {}
        self._tasks: set[str] = set()  # as of the last refresh

    # the hub's listener ------------------------------------------------------------------------
    def observe(self, item: WatchItem) -> None:
        """One hub event: counters grow by what changed since the execution's last snapshot."""
        counters = item.progress or (item.execution.counters if item.execution else None)
        if counters is not None:
            self._count(item.task, item.execution_id, counters)
        record = item.execution
        if record is None:
            return
        if record.status.active:
            self._seen.setdefault(record.id, Counters())
        else:
            self._seen.pop(record.id, None)
            self._ended(record)
        self.running.set(len(self._seen))

    def _count(self, task: str, execution_id: int, counters: Counters) -> None:
        before = self._seen.get(execution_id, Counters())
        grown = increments(before, counters)
        for outcome, count in grown.by_outcome().items():
            if count:
                self.tags.labels(task, outcome).inc(count)
        if grown.bytes:
            self.bytes.labels(task).inc(grown.bytes)
        self._seen[execution_id] = merged(before, counters)

    def _ended(self, record: ExecutionRecord) -> None:
        self.executions.labels(record.task, record.status.value).inc()
        if record.finished is not None:
            seconds = (record.finished - record.started).total_seconds()
            self.duration.labels(record.task).observe(max(seconds, 0.0))
        self._set_status(record.task, record.status)
        if record.status is ExecutionStatus.SUCCEEDED and record.finished is not None:
            self.last_success.labels(record.task).set(record.finished.timestamp())

    def _set_status(self, task: str, status: ExecutionStatus) -> None:
        for each in _TERMINAL:
            self.last_status.labels(task, each.value).set(1 if each is status else 0)

    # the store's view, read at start and then now and then -------------------------------------
    def refresh(self, tasks: Iterable[TaskRecord], successes: Mapping[str, datetime],
                now: datetime | None = None) -> None:
        moment = now or datetime.now(UTC)
        tasks = list(tasks)
        for gone in self._tasks - {task.name for task in tasks}:  # deleted: its gauges go
            for gauge in (self.period, self.last_success):
                _remove(gauge, gone)
            for status in _TERMINAL:
                _remove(self.last_status, gone, status.value)
        self._tasks = {task.name for task in tasks}
        for task in tasks:
            cron = task.rule.cron_expression
            if cron:
                self.period.labels(task.name).set(schedule_period(cron, moment).total_seconds())
            else:
                _remove(self.period, task.name)
            last = task.last_execution
            if last is not None and not last.status.active:
                self._set_status(task.name, last.status)
        for name, finished in successes.items():
            self.last_success.labels(name).set(finished.timestamp())

    # the transport's observer (observe.RequestObserver) ----------------------------------------
    def request(self, registry: str, method: str, code: int | None) -> None:
        self.requests.labels(registry, method_label(method), code_label(code)).inc()

    def retry(self, registry: str) -> None:
        self.retries.labels(registry).inc()

    def ratelimit(self, registry: str, remaining: int) -> None:
        self.quota.labels(registry).set(remaining)


def _remove(metric: Any, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass


def parse_metrics_listen(value: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[V6]:PORT` -> (host, port); a bare port means loopback.

    Raises:
        ConfigError: naming the flag and the expected form.
    """
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]") if host else "127.0.0.1"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"--metrics-listen {value!r}: expected PORT, HOST:PORT or [V6]:PORT")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(
                f"--metrics-listen {value!r}: the host must be an IP address or localhost"
            ) from None
    return host, int(port_text)
