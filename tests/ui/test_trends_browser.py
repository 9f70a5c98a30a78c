"""The panel's trends in a real headless Chromium: `regsyncd serve` with its panel, real syncs.

The dashboard's charts (executions per day by status, bytes per day), a task's chart of its last
executions and a running execution's live progress bar and throughput, each read back from the
ECharts instance or the DOM the browser built. Screenshots go to artifacts/screenshots/; with
REGSYNC_UPDATE_DOCS=1 they also replace docs/trends-*.png (the README's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from selenium import webdriver
from selenium.webdriver.common.by import By
from support.images import push_image, random_layer
from support.registry import RegistryServer, free_port
from support.webhook import Receiver
from test_browser import ROOT, Page, _answers, _until, browser

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the fixture, used by name

DOCS = ROOT / "docs"
TAGS = 6
LAYER = 400_000
#: reads the data series of the chart marked `data-chart=NAME` (NiceGUI keeps the instance)
SERIES = """
const el = document.querySelector('[data-chart="' + arguments[0] + '"]');
if (!el) return null;
const view = getElement(el.id.replace(/^c/, ''));
if (!view || !view.chart) return null;
const option = view.chart.getOption();
return {x: option.xAxis[0].data, series: option.series.map(s => [s.name, s.data])};
"""


@dataclass
class Served:
    url: str
    api: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    ui_port, api = free_port(), f"127.0.0.1:{free_port()}"
    log = (tmp_path / "regsyncd.log").open("w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("regsyncd")), "serve", "--db",
         str(tmp_path / "regsync.db"), "--listen", api, "--ui-port", str(ui_port)],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ui_port}"
    try:
        _until(lambda: daemon.poll() is not None or _answers(url), "the panel to answer")
        if daemon.poll() is not None:
            pytest.fail(f"regsyncd exited: {(tmp_path / 'regsyncd.log').read_text()[-2000:]}")
        yield Served(url, api)
    finally:
        daemon.terminate()
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def _series(driver: webdriver.Chrome, name: str) -> dict[str, Any]:
    found: dict[str, Any] = _until(lambda: driver.execute_script(SERIES, name), f"chart {name}")
    return found


def _status(executions: Any, execution_id: int) -> int:
    detail = executions.GetExecution(pb.ExecutionRequest(id=execution_id), timeout=20)
    return int(detail.execution.status)


def _run_to_success(tasks: Any, executions: Any) -> None:
    execution_id = tasks.RunTask(pb.NameRequest(name="app"), timeout=20).id
    _until(lambda: _status(executions, execution_id) == pb.EXECUTION_STATUS_SUCCEEDED,
           "a re-run to succeed", timeout=60)


def _keep(page: Page, name: str) -> None:
    shot = page.shot(name)
    if os.environ.get("REGSYNC_UPDATE_DOCS"):  # refresh the README's pictures on purpose only
        shutil.copyfile(shot, DOCS / f"{name}.png")


def test_trend_charts_and_live_progress(browser: webdriver.Chrome, served: Served,
                                        registry: RegistryServer,
                                        registry2: RegistryServer) -> None:
    for n in range(TAGS):
        push_image(registry, "app", f"1.{n}", layers=[random_layer(LAYER, seed=f"t{n}")])
    page = Page(browser, served.url)
    with grpc.insecure_channel(served.api) as channel:
        registries = rpc.RegistryServiceStub(channel)
        tasks, executions = rpc.TaskServiceStub(channel), rpc.ExecutionServiceStub(channel)
        # a request-rate limit on the source makes the first run last a few seconds
        registries.CreateRegistry(pb.RegistrySpec(name="src", url=registry.url, qps=4),
                                  timeout=20)
        registries.CreateRegistry(pb.RegistrySpec(name="dst", url=registry2.url), timeout=20)
        tasks.CreateTask(pb.TaskSpec(
            name="app", enabled=True, source=pb.Endpoint(registry="src", repository="app"),
            target=pb.Endpoint(registry="dst", repository="mirror/app")), timeout=20)

        first = tasks.RunTask(pb.NameRequest(name="app"), timeout=20).id
        page.open(f"/executions/{first}")
        # while it runs: a progress bar that moves and a throughput reading
        throughput = page.visible("//*[contains(normalize-space(text()), 'throughput')]")
        assert "now" in throughput.text, throughput.text
        bar = browser.find_element(By.CSS_SELECTOR, "[data-progress]")
        assert bar.is_displayed()
        _until(lambda: float(browser.find_element(By.CSS_SELECTOR, "[data-progress]")
                             .get_attribute("data-progress") or 0) > 0, "progress to move")
        _until(lambda: "/s now" in page.visible(
            "//*[contains(normalize-space(text()), 'throughput')]").text, "a current rate")
        _keep(page, "trends-execution")
        _until(lambda: _status(executions, first) == pb.EXECUTION_STATUS_SUCCEEDED,
               "the first run to succeed", timeout=60)
        for _ in range(2):  # two no-op re-runs: three executions today, one copied bytes
            _run_to_success(tasks, executions)

    page.open(f"/executions/{first}")
    page.visible("//*[normalize-space(text())='100%']")
    assert browser.find_element(By.CSS_SELECTOR, "[data-progress]").get_attribute(
        "data-progress") == "1.000"

    page.open("/")
    per_day = _series(browser, "chart-executions-per-day")
    today = time.strftime("%m-%d", time.gmtime())
    assert len(per_day["x"]) == 30 and per_day["x"][-1] == today
    assert {name: data[-1] for name, data in per_day["series"]} == {
        "succeeded": 3, "failed": 0, "stopped": 0, "interrupted": 0}
    assert all(sum(data[:-1]) == 0 for _, data in per_day["series"])
    [(name, mib)] = _series(browser, "chart-bytes-per-day")["series"]
    assert name == "MiB copied" and mib[-1] >= round(TAGS * LAYER / 2**20, 2) and sum(mib) == mib[-1]
    assert browser.find_elements(By.CSS_SELECTOR, "[data-chart] canvas")  # drawn, not just set
    _keep(page, "trends-dashboard")

    page.open("/executions?task=app")
    history = _series(browser, "chart-task-history")
    assert len(history["x"]) == 3 and history["x"][0] == f"#{first}"
    durations, copied = (data for _, data in history["series"])
    assert all(d > 0 for d in durations) and durations[0] > durations[1]
    assert copied[0] > 0 and copied[1:] == [0, 0]
    _keep(page, "trends-task")


def test_webhooks_page_shows_the_last_delivery_and_adds_one(
        browser: webdriver.Chrome, served: Served, registry: RegistryServer,
        registry2: RegistryServer) -> None:
    push_image(registry, "app", "1.0", layers=[random_layer(10_000, seed="h")])
    page = Page(browser, served.url)
    with Receiver("ok") as receiver, Receiver("error") as failing, \
            grpc.insecure_channel(served.api) as channel:
        hooks = rpc.NotificationServiceStub(channel)
        for name, url in (("chat", receiver.url), ("audit", failing.url)):
            hooks.CreateNotification(pb.NotificationSpec(
                name=name, url=url, events=["execution.succeeded"], secret="hook-secret-9"),
                timeout=20)
        registries, tasks = rpc.RegistryServiceStub(channel), rpc.TaskServiceStub(channel)
        registries.CreateRegistry(pb.RegistrySpec(name="src", url=registry.url), timeout=20)
        registries.CreateRegistry(pb.RegistrySpec(name="dst", url=registry2.url), timeout=20)
        tasks.CreateTask(pb.TaskSpec(
            name="app", enabled=True, source=pb.Endpoint(registry="src", repository="app"),
            target=pb.Endpoint(registry="dst", repository="mirror/app")), timeout=20)
        _run_to_success(tasks, rpc.ExecutionServiceStub(channel))
        _until(lambda: receiver.received, "the webhook's POST")

        page.open("/notifications")
        page.see("ok (204) execution.succeeded")  # the delivery shows up on its own
        # the failing one gives up after its backoff (1 + 4 + 15 s), then says why
        _until(lambda: hooks.GetNotification(pb.NameRequest(name="audit"), timeout=20)
               .HasField("last_delivery"), "the failing webhook to give up", timeout=40)
        page.see("failed after 4 attempts: answered 500")
        assert "hook-secret-9" not in browser.page_source and "/hook" not in browser.page_source
        _keep(page, "webhooks")

        page.button("Add webhook")
        page.field("Name", "pager")
        page.field("URL", "https://pager.example/in")
        page.button("Save")
        page.see("Webhook pager added")
        page.visible("//*[normalize-space(text())='https://pager.example/...']")
        added = hooks.GetNotification(pb.NameRequest(name="pager"), timeout=20)
        assert list(added.events) == ["execution.failed"] and added.url == "https://pager.example/..."
