"""Webhooks against real HTTP receivers on loopback: one that takes the POST, one that answers
500, one where nothing listens and one that hangs; the runs finish promptly whatever they do."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
import yaml
from regsync.ctl.main import main as ctl
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.notify import delivery
from regsync.daemon.settings import GlobalSettings, RetrySettings
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.images import push_image, random_layer
from support.registry import RegistryServer
from support.webhook import Receiver, down_url

pytestmark = pytest.mark.integration

FAST = GlobalSettings(retry=RetrySettings(max_attempts=2, initial_interval=0.01,
                                          max_interval=0.05), timeout=20)
SECRET = "whsec-" + "7" * 24
HANG_TIMEOUT = 2.0


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    with Receiver("ok") as ok, Receiver("error") as error, Receiver("hang") as hang:
        yield {"ok": ok, "error": error, "hang": hang}


@pytest.fixture
async def daemon(
    tmp_path: Path, nursery: trio.Nursery, registry: RegistryServer, registry2: RegistryServer,
    receivers: dict[str, Receiver], monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Daemon]:
    monkeypatch.setattr(delivery, "BACKOFF", (0.05, 0.05))  # three attempts, quickly
    monkeypatch.setattr(delivery, "TIMEOUT", HANG_TIMEOUT)
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    hooks = [
        {"name": "ok", "url": receivers["ok"].url, "secret": "${HOOK_SECRET}",
         "events": ["execution.succeeded", "execution.failed", "task.stale"], "tasks": ["app"]},
        {"name": "error", "url": receivers["error"].url, "events": ["execution.succeeded"]},
        {"name": "down", "url": down_url(), "events": ["execution.succeeded"]},
        {"name": "hang", "url": receivers["hang"].url, "events": ["execution.succeeded"],
         "format": "slack"},
    ]
    config = tmp_path / "sync.yaml"
    config.write_text(yaml.safe_dump({
        "version": "1.0",
        "registries": {"src": {"url": registry.url}, "dst": {"url": registry2.url}},
        "sync_rules": [
            {"name": name, "enabled": True, "source": {"registry": "src", "repository": "app"},
             "target": {"registry": "dst", "repository": f"mirror/{name}"},
             "cron_expression": "0 3 * * *"}
            for name in ("app", "other")
        ],
        "notifications": hooks,
    }))
    options = ServeOptions(db_path=str(tmp_path / "regsync.db"), listen="127.0.0.1:0",
                           ui_port=None, shutdown_grace=1.0, global_settings=FAST,
                           config_path=str(config), panel_url="https://panel.example/")
    started: Daemon = await nursery.start(Daemon(options).run)
    yield started
    await started.shutdown()


def _stubs(daemon: Daemon) -> tuple[grpc.Channel, Any, Any]:
    channel = grpc.insecure_channel(daemon.address)
    return channel, rpc.TaskServiceStub(channel), rpc.NotificationServiceStub(channel)


async def _run(daemon: Daemon, task: str) -> tuple[int, float]:
    """Run `task` to its end; its id and how long that took."""
    def call() -> tuple[int, float]:
        channel, tasks, _ = _stubs(daemon)
        executions = rpc.ExecutionServiceStub(channel)
        with channel:
            begin = time.monotonic()
            started = tasks.RunTask(pb.NameRequest(name=task), timeout=20)
            while time.monotonic() - begin < 30:
                detail = executions.GetExecution(pb.ExecutionRequest(id=started.id), timeout=20)
                if detail.execution.status == pb.EXECUTION_STATUS_SUCCEEDED:
                    return started.id, time.monotonic() - begin
                time.sleep(0.02)
        raise AssertionError("execution did not succeed")

    return await trio.to_thread.run_sync(call)


async def _ctl(daemon: Daemon, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await trio.to_thread.run_sync(lambda: ctl(
        ["--server", daemon.address, *argv], stdout=out, stderr=err, stdin=io.StringIO(stdin),
        environ={}))
    return code, out.getvalue(), err.getvalue()


async def _notifications(daemon: Daemon) -> dict[str, pb.Notification]:
    def call() -> dict[str, pb.Notification]:
        channel, _, hooks = _stubs(daemon)
        with channel:
            reply = hooks.ListNotifications(pb.ListNotificationsRequest(), timeout=20)
            return {n.name: n for n in reply.notifications}

    return await trio.to_thread.run_sync(call)


async def _wait_delivered(daemon: Daemon, names: set[str], timeout: float = 20) -> dict[
        str, pb.Notification]:
    with trio.fail_after(timeout):
        while True:
            hooks = await _notifications(daemon)
            if all(hooks[n].HasField("last_delivery") for n in names):
                return hooks
            await trio.sleep(0.05)


async def test_deliveries_to_good_failing_down_and_hanging_receivers(
    daemon: Daemon, registry: RegistryServer, receivers: dict[str, Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    push_image(registry, "app", "1.0", layers=[random_layer(50_000, seed="w")])
    execution_id, took = await _run(daemon, "app")
    # the hanging receiver holds each attempt HANG_TIMEOUT seconds: the run did not wait for it
    assert took < HANG_TIMEOUT, took

    hooks = await _wait_delivered(daemon, {"ok", "error", "down"})
    assert not hooks["hang"].HasField("last_delivery")  # still trying: the run is long done

    ok = hooks["ok"].last_delivery
    assert (ok.ok, ok.code, ok.attempts, ok.event) == (True, 204, 1, "execution.succeeded")
    [got] = receivers["ok"].received
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-regsync-signature"] == expected
    body = json.loads(got.body)
    assert body["event"] == "execution.succeeded" and body["task"] == "app"
    assert body["execution"]["id"] == execution_id
    assert body["execution"]["status"] == "succeeded"
    assert body["execution"]["counters"]["tags_copied"] == 1
    assert body["execution"]["failed_tags"] == []
    assert body["execution"]["duration_seconds"] >= 0
    assert body["link"] == f"https://panel.example/executions/{execution_id}"

    error = hooks["error"].last_delivery
    assert (error.ok, error.code, error.attempts) == (False, 500, 3)
    assert error.error == "answered 500"
    assert len(receivers["error"].received) == 3
    assert "x-regsync-signature" not in receivers["error"].received[0].headers  # no secret

    down = hooks["down"].last_delivery
    assert (down.ok, down.code, down.attempts) == (False, 0, 3)
    assert "cannot connect" in down.error and "127.0.0.1" not in down.error

    hooks = await _wait_delivered(daemon, {"hang"}, timeout=4 * HANG_TIMEOUT)
    hang = hooks["hang"].last_delivery
    assert (hang.ok, hang.code, hang.attempts) == (False, 0, 3)
    assert hang.error == f"no answer within {HANG_TIMEOUT:g}s"
    assert json.loads(receivers["hang"].received[0].body)["text"].startswith(
        "regsync: task app execution")

    # regsyncctl shows each hook's last delivery
    code, out, err = await _ctl(daemon, "notifications", "list")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "ok (204) execution.succeeded" in lines["ok"]
    assert "FAILED after 3 attempts: answered 500" in lines["error"]
    assert "FAILED after 3 attempts: no answer within 2s" in lines["hang"]
    assert "/hook" not in out and SECRET not in out

    # replies never carry the secret or the URL's path; logs never carry the secret
    assert hooks["ok"].secret_set and not hooks["error"].secret_set
    assert hooks["ok"].url.endswith("/...") and "/hook" not in hooks["ok"].url
    assert SECRET not in str(hooks) and SECRET not in caplog.text


async def test_the_tasks_filter_and_the_api(
    daemon: Daemon, registry: RegistryServer, receivers: dict[str, Receiver]
) -> None:
    push_image(registry, "app", "1.0", layers=[random_layer(50_000, seed="f")])
    await _run(daemon, "other")  # "ok" is for task app only; "error" hears every task
    await _wait_delivered(daemon, {"error"})
    assert receivers["ok"].received == []

    def crud() -> None:
        channel, _, hooks = _stubs(daemon)
        with channel:
            created = hooks.CreateNotification(pb.NotificationSpec(
                name="new", url=receivers["ok"].url, events=["task.stale"], secret="s3cr3t-val"),
                timeout=20)
            assert created.secret_set and created.format == "json"
            assert "s3cr3t-val" not in str(created)
            # update without a secret keeps it; an empty one removes it
            kept = hooks.UpdateNotification(pb.NotificationSpec(
                name="new", url=receivers["ok"].url, events=["execution.failed"]), timeout=20)
            assert kept.secret_set and list(kept.events) == ["execution.failed"]
            removed = hooks.UpdateNotification(pb.NotificationSpec(
                name="new", url=receivers["ok"].url, events=["execution.failed"], secret=""),
                timeout=20)
            assert not removed.secret_set
            for spec, field in [
                (pb.NotificationSpec(name="b", url="ftp://x", events=["task.stale"]),
                 "notification.url"),
                (pb.NotificationSpec(name="b", url="https://u:p@x.example/", events=["task.stale"]),
                 "notification.url"),
                (pb.NotificationSpec(name="b", url="https://x.example/", events=["task.gone"]),
                 "notification.events[0]"),
                (pb.NotificationSpec(name="b", url="https://x.example/", events=["task.stale"],
                                     format="xml"), "notification.format"),
            ]:
                with pytest.raises(grpc.RpcError) as caught:
                    hooks.CreateNotification(spec, timeout=20)
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert caught.value.details().startswith(field), caught.value.details()
                assert "u:p" not in caught.value.details()
            with pytest.raises(grpc.RpcError) as caught:
                hooks.CreateNotification(pb.NotificationSpec(
                    name="new", url=receivers["ok"].url, events=["task.stale"]), timeout=20)
            assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
            hooks.DeleteNotification(pb.NameRequest(name="new"), timeout=20)
            with pytest.raises(grpc.RpcError) as caught:
                hooks.GetNotification(pb.NameRequest(name="new"), timeout=20)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    await trio.to_thread.run_sync(crud)

    # Apply refuses webhooks rather than dropping them (a ${VAR} anywhere it refuses anyway)
    applied = yaml.safe_dump({"notifications": [
        {"name": "x", "url": "https://x.example/", "events": ["task.stale"],
         "secret": "s3cret"}]})
    code, _, err = await _ctl(daemon, "apply", "-f", "-", stdin=applied)
    assert code == 1 and "Apply does not take webhooks" in err, err
    assert "x" not in await _notifications(daemon)

    code, out, err = await _ctl(daemon, "notifications", "add", "cli", "--url",
                                receivers["ok"].url + "?token=abc", "--event", "task.stale",
                                "--task", "app", "--format", "slack", "--secret-stdin",
                                stdin="cli-secret-1\n")
    assert (code, out.strip()) == (0, "webhook cli added"), err
    code, out, err = await _ctl(daemon, "-o", "json", "notifications", "show", "cli")
    shown = json.loads(out)
    assert shown["secret_set"] is True and shown["format"] == "slack"
    assert shown["url"].endswith("/...") and "abc" not in out and "cli-secret-1" not in out
    code, out, _ = await _ctl(daemon, "notifications", "edit", "cli", "--url",
                              receivers["ok"].url, "--event", "task.stale", "--no-secret")
    assert code == 0
    code, out, _ = await _ctl(daemon, "notifications", "show", "cli")
    assert re.search(r"^secret:\s+not set$", out, re.MULTILINE), out
    assert (await _ctl(daemon, "notifications", "rm", "cli"))[0] == 0
    code, _, err = await _ctl(daemon, "notifications", "show", "cli")
    assert code == 1 and "no webhook named 'cli'" in err


async def test_a_stale_task_is_told_once_per_stale_spell(
    daemon: Daemon, receivers: dict[str, Receiver]
) -> None:
    notifier = daemon.notifier
    assert notifier is not None
    soon = datetime.now(UTC) + timedelta(days=1)
    await notifier.check_stale(soon)  # a daily task created now: not stale a day later
    later = datetime.now(UTC) + timedelta(days=3)
    await notifier.check_stale(later)
    await notifier.check_stale(later + timedelta(hours=1))  # still stale: not told again
    await _wait_delivered(daemon, {"ok"})
    [got] = receivers["ok"].received  # "ok" is for task app only
    body = json.loads(got.body)
    assert (body["event"], body["task"], body["last_success"]) == ("task.stale", "app", None)
    assert body["period_seconds"] == 86400
    assert body["link"] == "https://panel.example/executions?task=app"
