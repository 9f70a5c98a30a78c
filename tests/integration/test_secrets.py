"""Registry passwords and API tokens never show: not in replies, logs, error texts, the CLI, the
panel, nor in files others can read.

One session exercises every way a secret could escape: registries with good and wrong passwords
(basic and token auth; the token service refuses the wrong one), a proxy that answers 401 (and one
that answers 404) with a body echoing the Authorization header it received, a password given in
applied YAML, runs, plans, previews, the live Watch stream. Then every reply, every error text,
every log record (all loggers at DEBUG), the CLI's table and JSON output, `regsyncd serve -v`'s
own output and the panel's pages are searched for every secret, including the derived forms a
leak would take (base64 of user:password, the bearer tokens the registry was sent).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import secrets
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import trio
from google.protobuf.message import Message
from regsync.ctl.main import main as ctl
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.settings import GlobalSettings, RetrySettings
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from support.images import push_image, random_layer
from support.proxy import CountingProxy, Fault, ProxyRequest
from support.registry import RegistryServer, free_port

pytestmark = pytest.mark.integration

S = pb.ExecutionStatus
FAST = GlobalSettings(retry=RetrySettings(max_attempts=2, initial_interval=0.01,
                                          max_interval=0.05), timeout=20)
REGSYNCD = str(Path(sys.executable).with_name("regsyncd"))
DONE = (S.EXECUTION_STATUS_SUCCEEDED, S.EXECUTION_STATUS_FAILED, S.EXECUTION_STATUS_STOPPED)


def secret(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(12)}"


class Api:
    """Blocking gRPC stubs (with the API token), called from worker threads; every reply and
    every error text is kept, as text and as bytes, for the final search."""

    def __init__(self, address: str, token: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.registries = rpc.RegistryServiceStub(self.channel)
        self.tasks = rpc.TaskServiceStub(self.channel)
        self.executions = rpc.ExecutionServiceStub(self.channel)
        self.control = rpc.ControlServiceStub(self.channel)
        self.seen: list[str] = []

    def keep(self, reply: Message) -> None:
        self.seen.append(str(reply))
        self.seen.append(reply.SerializeToString().decode("utf-8", "replace"))

    async def __call__(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            reply = await trio.to_thread.run_sync(
                lambda: method(request, metadata=self.metadata, timeout=30))
        except grpc.RpcError as exc:
            self.seen.append(f"{exc.code()}: {exc.details()}")
            raise
        self.keep(reply)
        return reply

    async def attempt(self, method: Callable[..., Any], request: Any) -> Any:
        """The reply, or None when the RPC failed (its error text is kept all the same)."""
        try:
            return await self(method, request)
        except grpc.RpcError:
            return None

    def watch_all(self, stop: threading.Event) -> None:
        """Every Watch event (with logs) until `stop` is set; runs in a thread."""
        stream = self.control.Watch(pb.WatchRequest(logs=True), metadata=self.metadata,
                                    timeout=120)
        threading.Thread(target=lambda: (stop.wait(), stream.cancel()), daemon=True).start()
        try:
            for event in stream:
                self.keep(event)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.seen.append(f"{exc.code()}: {exc.details()}")


def echo_authorization(
    status: int, code: str, challenge: str | None = 'Basic realm="echo"'
) -> Callable[[ProxyRequest], Fault | None]:
    """A registry that quotes the credentials it was sent back in its error body (some do, in
    'detail'); requests without credentials go through (the real registry challenges them)."""

    def hook(request: ProxyRequest) -> Fault | None:
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"),
                      None)
        if header is None:
            return None
        body = json.dumps({"errors": [{
            "code": code, "message": f"credentials {header} refused",
            "detail": {"Authorization": header}}]}).encode()
        headers = [("Content-Type", "application/json")]
        if challenge:
            headers.append(("WWW-Authenticate", challenge))
        return Fault(status=status, body=body, label="echo", headers=tuple(headers))

    return hook


@dataclass
class Bed:
    """The registries of the session and the secrets that must never show."""

    basic: RegistryServer
    token: RegistryServer
    target: RegistryServer
    proxies: dict[str, CountingProxy] = field(default_factory=dict)
    api_token: str = field(default_factory=lambda: secret("api-token"))
    wrong: str = field(default_factory=lambda: secret("wrong-password"))
    applied: str = field(default_factory=lambda: secret("applied-password"))

    def sources(self) -> dict[str, tuple[str, str, str]]:
        """Registry name -> (url, user, password) of every source the session uses."""
        basic, token = self.basic.password or "", self.token.password or ""
        return {
            "basic": (self.basic.url, "alice", basic),
            "token": (self.proxies["token"].url, "bob", token),
            "basic-wrong": (self.basic.url, "alice", self.wrong),
            "token-wrong": (self.token.url, "bob", self.wrong),
            "echo-401": (self.proxies["echo-401"].url, "alice", basic),
            "echo-404": (self.proxies["echo-404"].url, "alice", basic),
            "echo-bearer": (self.proxies["echo-bearer"].url, "bob", token),
        }

    def secrets(self) -> list[str]:
        """Every secret, and the forms a leak of one would take."""
        plain = [self.basic.password or "", self.token.password or "", self.api_token,
                 self.wrong, self.applied]
        derived = [base64.b64encode(f"{user}:{pw}".encode()).decode()
                   for user, pw in (("alice", plain[0]), ("bob", plain[1]), ("alice", self.wrong),
                                    ("bob", self.wrong), ("alice", self.applied))]
        sent = {value.split(" ", 1)[-1]
                for proxy in self.proxies.values() for request in proxy.requests
                for key, value in request.headers.items() if key.lower() == "authorization"}
        found = [s for s in plain + derived + sorted(sent) if s]
        assert all(len(s) >= 12 for s in found)
        return found


@pytest.fixture
def bed(basic_registry: RegistryServer, token_registry: RegistryServer,
        registry2: RegistryServer) -> Iterator[Bed]:
    for server in (basic_registry, token_registry):
        push_image(server, "team/app", "1.0", layers=[random_layer(2000, seed=server.url)])
    bed = Bed(basic_registry, token_registry, registry2)
    bed.proxies = {
        "token": CountingProxy(token_registry),  # records the bearer tokens regsync sends
        "echo-401": CountingProxy(basic_registry, fault=echo_authorization(401, "UNAUTHORIZED")),
        "echo-404": CountingProxy(basic_registry, fault=echo_authorization(404, "NAME_UNKNOWN")),
        # the bearer token, not the password, is what this one quotes back
        "echo-bearer": CountingProxy(token_registry,
                                     fault=echo_authorization(401, "UNAUTHORIZED", None)),
    }
    for proxy in bed.proxies.values():
        proxy.start()
    try:
        yield bed
    finally:
        for proxy in bed.proxies.values():
            proxy.stop()


async def session(api: Api, bed: Bed) -> dict[str, pb.ExecutionDetail]:
    """Use every RPC with the secrets in play; returns each task's finished execution."""
    await api(api.registries.CreateRegistry, pb.RegistrySpec(name="dst", url=bed.target.url))
    for name, (url, user, password) in bed.sources().items():
        await api(api.registries.CreateRegistry,
                  pb.RegistrySpec(name=name, url=url, username=user, password=password))
        await api(api.registries.TestRegistry, pb.NameRequest(name=name))
    url, user, password = bed.sources()["basic"]
    await api(api.registries.UpdateRegistry,
              pb.RegistrySpec(name="basic", url=url, username=user, password=password, qps=50))
    await api(api.control.Apply, pb.ApplyRequest(source="applied.yaml", yaml=(
        f"registries:\n  applied: {{url: '{bed.basic.url}', username: alice,"
        f" password: '{bed.applied}'}}\n")))
    await api(api.registries.TestRegistry, pb.NameRequest(name="applied"))

    stop = threading.Event()
    details: dict[str, pb.ExecutionDetail] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, api.watch_all, stop)
        await trio.sleep(0.2)
        for name in [*bed.sources(), "applied"]:
            details[name] = await run_task(api, name)
        stop.set()
    for name in details:
        await api.attempt(api.tasks.PlanTask, pb.NameRequest(name=name))
        await api.attempt(api.tasks.PreviewTags, pb.PreviewTagsRequest(spec=pb.TaskSpec(
            source=pb.Endpoint(registry=name, repository="team/app"))))
        await api(api.tasks.GetTask, pb.NameRequest(name=name))
        await api(api.registries.GetRegistry, pb.NameRequest(name=name))
    for execution in details.values():
        await api(api.executions.GetLogs, pb.LogsRequest(execution_id=execution.execution.id))
    await api(api.registries.ListRegistries, pb.ListRegistriesRequest())
    await api(api.tasks.ListTasks, pb.ListTasksRequest())
    await api(api.executions.ListExecutions, pb.ListExecutionsRequest())
    await api(api.control.GetStats, pb.StatsRequest())
    await api(api.control.GetStatus, pb.StatusRequest())
    return details


async def run_task(api: Api, registry: str) -> pb.ExecutionDetail:
    await api(api.tasks.CreateTask, pb.TaskSpec(
        name=registry, enabled=True, source=pb.Endpoint(registry=registry, repository="team/app"),
        target=pb.Endpoint(registry="dst", repository=f"mirror/{registry}")))
    execution = await api(api.tasks.RunTask, pb.NameRequest(name=registry))
    with trio.fail_after(60):
        while True:
            detail: pb.ExecutionDetail = await api(api.executions.GetExecution,
                                                   pb.ExecutionRequest(id=execution.id))
            if detail.execution.status in DONE:
                return detail
            await trio.sleep(0.05)


def check_outcomes(details: dict[str, pb.ExecutionDetail], bed: Bed) -> None:
    """The session did meet every refusal (else the search below proves little)."""
    status = {name: d.execution.status for name, d in details.items()}
    assert status == {
        "basic": S.EXECUTION_STATUS_SUCCEEDED, "token": S.EXECUTION_STATUS_SUCCEEDED,
        "basic-wrong": S.EXECUTION_STATUS_FAILED, "token-wrong": S.EXECUTION_STATUS_FAILED,
        "echo-401": S.EXECUTION_STATUS_FAILED, "echo-404": S.EXECUTION_STATUS_FAILED,
        "echo-bearer": S.EXECUTION_STATUS_FAILED,
        "applied": S.EXECUTION_STATUS_FAILED,  # its password is not alice's
    }
    for name in ("basic-wrong", "token-wrong", "echo-401", "echo-bearer", "applied"):
        assert any(t.error_kind == "auth" for t in details[name].tags) or \
            "auth" in details[name].execution.error.lower(), details[name]
    assert bed.token.token_service is not None and bed.token.token_service.count(status=401) > 0
    for echo in ("echo-401", "echo-404", "echo-bearer"):  # the echoing answers were sent
        sent = [v for r in bed.proxies[echo].requests
                for k, v in r.headers.items() if k.lower() == "authorization"]
        assert sent, echo
        assert echo != "echo-bearer" or any(v.startswith("Bearer ") for v in sent)
    tags = [t for d in details.values() for t in d.tags]
    assert any(t.outcome == ev.TAG_OUTCOME_COPIED for t in tags)


def assert_hidden(texts: dict[str, str], bed: Bed) -> None:
    """Every leak is listed with what precedes it, the secret itself masked (a failing test
    must not print it either)."""
    leaks = []
    for where, text in texts.items():
        for value in bed.secrets():
            at = text.find(value)
            if at >= 0:
                before = text[max(0, at - 160) : at].replace(value, "<secret>")
                leaks.append(f"{where}: ...{before}<secret>")
    assert not leaks, "\n".join(leaks)


# In-process: replies, errors, log records, the CLI --------------------------------------------


@pytest.fixture
async def daemon(tmp_path: Path, nursery: trio.Nursery, bed: Bed) -> AsyncIterator[Daemon]:
    options = ServeOptions(db_path=str(tmp_path / "regsync.db"), listen="127.0.0.1:0",
                           ui_port=None, shutdown_grace=1.0, global_settings=FAST,
                           token=bed.api_token)
    started: Daemon = await nursery.start(Daemon(options).run)
    yield started
    await started.shutdown()


async def cli_outputs(address: str, bed: Bed, details: dict[str, pb.ExecutionDetail]) -> str:
    commands = [["registries", "list"], ["tasks", "list"], ["executions", "list"], ["stats"],
                ["status"]]
    for name, detail in details.items():
        commands += [["registries", "show", name], ["registries", "test", name],
                     ["tasks", "show", name], ["plan", name],
                     ["executions", "show", str(detail.execution.id)],
                     ["logs", str(detail.execution.id)]]
    out, err = io.StringIO(), io.StringIO()
    environ = {"REGSYNC_API_TOKEN": bed.api_token}

    def run_all() -> None:
        for output in ("table", "json"):
            for argv in commands:
                ctl(["--server", address, "-o", output, *argv], stdout=out, stderr=err,
                    stdin=io.StringIO(""), environ=environ)

    await trio.to_thread.run_sync(run_all)
    text = out.getvalue() + err.getvalue()
    assert "basic-wrong" in text and "echo-401" in text and "password" in text
    return text


async def test_replies_errors_logs_and_cli_hold_no_secret(
    daemon: Daemon, bed: Bed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, not only regsync's
    api = Api(daemon.address, bed.api_token)
    details = await session(api, bed)
    check_outcomes(details, bed)
    cli = await cli_outputs(daemon.address, bed, details)
    records = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert_hidden({"API replies and errors": "\n".join(api.seen), "log records": records,
                   "log text": caplog.text, "CLI output": cli}, bed)
    assert len(api.seen) > 100 and "regsync" in caplog.text


# `regsyncd serve -v` as users run it: its output, the panel, the database files ---------------


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium (Debian's; `make system-deps`): the panel's pages fill in over its
    websocket, so only a browser sees what a user sees."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: run `make system-deps`")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--window-size=1400,1000", f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def rendered_panel(driver: webdriver.Chrome, base: str, token: str, failed_id: int) -> str:
    """Sign in with the token, then each page's rendered HTML once its content is there."""

    def shows(text: str) -> str:
        deadline = time.monotonic() + 20
        while text not in driver.page_source:
            assert time.monotonic() < deadline, f"the panel never showed {text!r}"
            time.sleep(0.1)
        return driver.page_source

    driver.get(f"{base}/login?next=/registries")
    shows("Sign in")
    box = driver.find_element(By.XPATH, "//input[@type='password']")
    box.send_keys(token)
    driver.find_element(By.XPATH, "//button[.//*[normalize-space()='Sign in']]").click()
    pages = [shows("echo-401")]  # the registries page, with every registry
    driver.get(f"{base}/tasks")
    pages.append(shows("token-wrong"))
    driver.get(f"{base}/executions")
    pages.append(shows("failed"))
    driver.get(f"{base}/executions/{failed_id}")
    pages.append(shows("refused the credentials"))  # the tag's reason: the registry's answer
    return "\n".join(pages)


def panel_pages(base: str, execution_ids: list[int]) -> str:
    """Every page's HTML as httpx gets it (the panel asks for its token first)."""
    paths = ["/", "/login", "/registries", "/tasks", "/tasks/new", "/executions",
             "/tasks/edit?name=basic", *(f"/executions/{i}" for i in execution_ids)]
    pages = []
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as client:
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            pages.append(response.text)
    return "\n".join(pages)


@pytest.fixture
def serve(tmp_path: Path, bed: Bed) -> Iterator[tuple[subprocess.Popen[bytes], str, str, Path]]:
    """`regsyncd serve -v` with the panel and an API token; (process, address, panel, db)."""
    db, log = tmp_path / "state" / "regsync.db", tmp_path / "serve.log"
    config = tmp_path / "fast.yaml"
    config.write_text("global: {retry: {max_attempts: 1}, timeout: 20s}\n")
    address, ui_port = f"127.0.0.1:{free_port()}", free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [REGSYNCD, "serve", "-v", "--db", str(db), "--listen", address, "--config",
             str(config), "--ui-port", str(ui_port)],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "REGSYNC_API_TOKEN": bed.api_token})
    panel = f"http://127.0.0.1:{ui_port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(panel):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the panel did not answer"
            time.sleep(0.1)
        yield process, address, panel, db
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def test_serve_output_panel_and_database_files_hold_no_secret(
    serve: tuple[subprocess.Popen[bytes], str, str, Path], bed: Bed, tmp_path: Path,
    browser: webdriver.Chrome,
) -> None:
    process, address, panel, db = serve
    api = Api(address, bed.api_token)
    details = await session(api, bed)
    check_outcomes(details, bed)
    for path in (db, db.with_name(db.name + "-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    ids = [d.execution.id for d in details.values()]
    pages = await trio.to_thread.run_sync(panel_pages, panel, ids)
    assert "regsync" in pages.lower()
    failed = details["echo-401"].execution.id
    rendered = await trio.to_thread.run_sync(
        rendered_panel, browser, panel, bed.api_token, failed)

    process.terminate()
    await trio.to_thread.run_sync(process.wait, 15)
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert "DEBUG" in output and "echo-401" in output  # -v took effect; the runs were logged
    assert_hidden({"regsyncd serve -v output": output, "panel pages": pages,
                   "panel as rendered": rendered,
                   "API replies and errors": "\n".join(api.seen)}, bed)
