"""`regsyncd serve --metrics-listen`, scraped by a real Prometheus after real syncs."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest
import trio
import yaml
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.settings import GlobalSettings, RetrySettings
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.images import push_image, random_layer
from support.prometheus import PROMTOOL_BIN, PrometheusServer
from support.registry import RegistryServer

pytestmark = pytest.mark.integration

ALERTS = Path(__file__).parents[2] / "configs" / "regsync-alerts.yml"
FAST = GlobalSettings(retry=RetrySettings(max_attempts=2, initial_interval=0.01,
                                          max_interval=0.05), timeout=20)
LAYER = 300_000


# daily, twelve hours from now: the schedule has a period, yet never fires during the test (a
# `*/5` one did, on a five-minute boundary, and the run counts were off by one)
_FAR_FROM_NOW = f"0 {(datetime.now(UTC).hour + 12) % 24} * * *"


def _config(path: Path, src: RegistryServer, dst: RegistryServer) -> Path:
    path.write_text(yaml.safe_dump({
        "version": "1.0",
        "registries": {"src": {"url": src.url}, "dst": {"url": dst.url}},
        "sync_rules": [{
            "name": "app", "enabled": True, "cron_expression": _FAR_FROM_NOW,
            "source": {"registry": "src", "repository": "app"},
            "target": {"registry": "dst", "repository": "mirror/app"},
        }],
    }))
    return path


@pytest.fixture
async def daemon(tmp_path: Path, nursery: trio.Nursery, registry: RegistryServer,
                 registry2: RegistryServer) -> AsyncIterator[Daemon]:
    options = ServeOptions(db_path=str(tmp_path / "regsync.db"), listen="127.0.0.1:0",
                           ui_port=None, shutdown_grace=1.0, global_settings=FAST,
                           config_path=str(_config(tmp_path / "sync.yaml", registry, registry2)),
                           metrics_listen="127.0.0.1:0")
    started: Daemon = await nursery.start(Daemon(options).run)
    yield started
    await started.shutdown()


async def _run(daemon: Daemon, task: str) -> None:
    def call() -> None:
        with grpc.insecure_channel(daemon.address) as channel:
            tasks = rpc.TaskServiceStub(channel)
            executions = rpc.ExecutionServiceStub(channel)
            started = tasks.RunTask(pb.NameRequest(name=task), timeout=20)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                detail = executions.GetExecution(pb.ExecutionRequest(id=started.id), timeout=20)
                if detail.execution.status == pb.EXECUTION_STATUS_SUCCEEDED:
                    return
                assert detail.execution.status in (pb.EXECUTION_STATUS_QUEUED,
                                                   pb.EXECUTION_STATUS_RUNNING), detail
                time.sleep(0.05)
            raise AssertionError("execution did not finish")

    await trio.to_thread.run_sync(call)


async def _eventually(prom: PrometheusServer, expr: str, expected: float) -> None:
    """Wait (a few scrape intervals) until `expr` has the value `expected`."""
    value = None
    with trio.move_on_after(20):
        while (value := await trio.to_thread.run_sync(prom.value, expr)) != expected:
            await trio.sleep(0.3)
    assert value == expected, f"{expr} = {value}, wanted {expected}"


async def test_prometheus_scrapes_sync_metrics(
    daemon: Daemon, registry: RegistryServer, tmp_path: Path
) -> None:
    for tag in ("1.0", "1.1"):
        push_image(registry, "app", tag, layers=[random_layer(LAYER, seed=tag)])
    host, port = daemon.metrics_address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0

    with PrometheusServer(tmp_path / "prom", [daemon.metrics_address],
                          rule_files=(ALERTS,)) as prom:
        # before any run: the schedule's period is known from the store, nothing ran
        await _eventually(prom, 'regsync_task_schedule_period_seconds{task="app"}', 86400)
        await _eventually(prom, "regsync_executions_running", 0)
        await _run(daemon, "app")
        await _eventually(prom, 'regsync_executions_total{task="app",status="succeeded"}', 1)
        await _eventually(prom, 'regsync_tags_total{task="app",outcome="copied"}', 2)
        bytes_copied = prom.value('regsync_bytes_copied_total{task="app"}')
        assert bytes_copied is not None and bytes_copied >= 2 * LAYER
        assert prom.value('regsync_task_last_status{task="app",status="succeeded"}') == 1
        assert prom.value('regsync_task_last_status{task="app",status="failed"}') == 0
        last = prom.value('regsync_task_last_success_timestamp_seconds{task="app"}')
        assert last is not None and abs(time.time() - last) < 60
        assert prom.value('regsync_execution_duration_seconds_count{task="app"}') == 1
        puts = prom.value('sum(regsync_registry_requests_total'
                          '{registry="dst",method="PUT",code="201"})')
        assert puts is not None and puts >= 2
        assert prom.value('sum(regsync_registry_requests_total{registry="src",method="GET"})')
        assert prom.value('regsync_build_info{version="0.1.0"}') == 1

        # a second run copies nothing: skipped grows, copied and bytes stay
        await _run(daemon, "app")
        await _eventually(prom, 'regsync_executions_total{task="app",status="succeeded"}', 2)
        await _eventually(prom, 'regsync_tags_total{task="app",outcome="skipped"}', 2)
        assert prom.value('regsync_tags_total{task="app",outcome="copied"}') == 2
        assert prom.value('regsync_bytes_copied_total{task="app"}') == bytes_copied

        # the panel's daily trends count both runs today, with the bytes the first copied
        def trends() -> pb.DailyTrendsResponse:
            with grpc.insecure_channel(daemon.address) as channel:
                reply: pb.DailyTrendsResponse = rpc.TrendServiceStub(channel).GetDailyTrends(
                    pb.DailyTrendsRequest(days=30), timeout=20)
                return reply

        days = (await trio.to_thread.run_sync(trends)).days
        assert len(days) == 30 and days[-1].date == time.strftime("%Y-%m-%d", time.gmtime())
        assert (days[-1].succeeded, days[-1].failed, days[-1].bytes_copied) == (
            2, 0, bytes_copied)
        assert sum(d.succeeded for d in days) == 2

        # every label set is bounded: no tag, digest, repository or URL anywhere
        series = (await trio.to_thread.run_sync(lambda: httpx.get(
            f"{prom.url}/api/v1/series", params={"match[]": '{__name__=~"regsync_.*"}'},
            timeout=5))).json()
        labels = {key for item in series["data"] for key in item}
        assert labels <= {"__name__", "instance", "job", "task", "status", "outcome", "registry",
                          "method", "code", "le", "version"}, labels
        text = (await trio.to_thread.run_sync(lambda: httpx.get(
            f"http://{daemon.metrics_address}/metrics", timeout=5))).text
        assert registry.url not in text and "sha256:" not in text and "mirror/app" not in text

        # the example alert rules load and evaluate in this Prometheus
        rules = prom.rules()
        assert {r["name"] for r in rules} == {"RegsyncTaskStale", "RegsyncTaskNeverSucceeded"}
        assert all(r["health"] == "ok" for r in rules), rules


def test_the_stale_alert_fires_only_past_twice_the_period(tmp_path: Path) -> None:
    """promtool's rule unit test: a 5-minute task last succeeding 11 minutes ago pages after
    the `for:` delay, one that succeeded 9 minutes ago does not."""
    promtool = shutil.which(PROMTOOL_BIN)
    assert promtool, "promtool (Debian's prometheus package) is not installed"
    # at t=0 'stale' last succeeded 11 minutes before, 'fresh' 9 minutes before (Unix time 0)
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": 'regsync_task_schedule_period_seconds{task="stale"}',
                 "values": "300x20"},
                {"series": 'regsync_task_schedule_period_seconds{task="fresh"}',
                 "values": "300x20"},
                {"series": 'regsync_task_last_success_timestamp_seconds{task="stale"}',
                 "values": "-660x20"},
                {"series": 'regsync_task_last_success_timestamp_seconds{task="fresh"}',
                 "values": "-540x20"},
            ],
            "alert_rule_test": [
                # 'stale' is past 600 s from t=0: pending for the 5 minutes of `for:`
                {"eval_time": "4m", "alertname": "RegsyncTaskStale", "exp_alerts": []},
                {"eval_time": "6m", "alertname": "RegsyncTaskStale", "exp_alerts": [
                    _stale_alert("stale", "17m 0s")]},
                # 'fresh' reaches 600 s at t=1m, passes it at t=2m: it pages from t=7m
                {"eval_time": "8m", "alertname": "RegsyncTaskStale", "exp_alerts": [
                    _stale_alert("stale", "19m 0s"), _stale_alert("fresh", "17m 0s")]},
            ],
        }],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _stale_alert(task: str, ago: str) -> dict[str, object]:
    return {
        "exp_labels": {"severity": "warning", "task": task},
        "exp_annotations": {
            "summary": f"regsync task {task} has not succeeded for over twice its period",
            "description": f"Last success {ago} ago. See `regsyncctl executions list --task "
                           f"{task}` or the panel for the failing tags.\n",
        },
    }
