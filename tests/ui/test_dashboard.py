"""Dashboard, login and reconnection, in NiceGUI's user simulation against the fake daemon."""

from __future__ import annotations

import grpc
import pytest
from fake_daemon import FakeDaemon, finish_execution, start_execution
from nicegui.testing import User
from regsync.proto.regsync.v1 import regsync_pb2 as pb

pytestmark = pytest.mark.asyncio


async def test_dashboard_shows_totals_and_latest_executions(
        user: User, fake_daemon: FakeDaemon) -> None:
    fake_daemon.add_registry("src")
    fake_daemon.add_registry("dst")
    fake_daemon.add_task("nginx")
    execution = start_execution(fake_daemon.state, "nginx")
    finish_execution(fake_daemon.state, execution.id, pb.EXECUTION_STATUS_SUCCEEDED)
    await user.open("/")
    await user.should_see("Succeeded today")
    await user.should_see(marker=f"execution-{execution.id}")
    await user.should_see("succeeded")
    with user.scope(marker="card-succeeded-today"):
        await user.should_see("1")
    with user.scope(marker="card-tasks"):
        await user.should_see("1 enabled")


async def test_dashboard_follows_the_watch_stream(user: User, fake_daemon: FakeDaemon) -> None:
    fake_daemon.add_registry("src")
    fake_daemon.add_registry("dst")
    fake_daemon.add_task("nginx")
    await user.open("/")
    await user.should_see("No executions yet")
    execution = start_execution(fake_daemon.state, "nginx")  # not through the panel
    await user.should_see(marker=f"execution-{execution.id}", retries=40)
    await user.should_see("running")


async def test_login_keeps_the_token_for_the_tab(token_user: User,
                                                 token_daemon: FakeDaemon) -> None:
    await token_user.open("/tasks")
    await token_user.should_see(marker="token")  # sent to the login page first
    token_user.find(marker="token").type("wrong")
    token_user.find(marker="sign-in").click()
    await token_user.should_see("The daemon rejected this token.")
    token_user.find(marker="token").clear().type("s3cret-token")
    token_user.find(marker="sign-in").click()
    await token_user.should_see("No tasks yet", retries=20)  # back where it was going
    calls = token_daemon.calls("ListTasks")
    assert calls, "the tasks page asked the daemon with the token"
    assert not any("s3cret" in str(m) for m in token_user.notify.messages)


async def test_daemon_errors_become_one_line_notifications(
        user: User, fake_daemon: FakeDaemon) -> None:
    fake_daemon.fail_next(grpc.StatusCode.INTERNAL,
                          "boom\nTraceback (most recent call last):\n  File x")
    await user.open("/registries")
    await user.should_see("failed: boom")
    assert not any("Traceback" in str(m) for m in user.notify.messages)


async def test_panel_survives_a_daemon_restart(user: User, fake_daemon: FakeDaemon) -> None:
    fake_daemon.add_registry("src")
    fake_daemon.add_registry("dst")
    fake_daemon.add_task("nginx")
    await user.open("/")
    await user.should_see("No executions yet")
    fake_daemon.stop()
    await user.should_see("Live updates paused", retries=40)
    fake_daemon.start()  # same port, same state
    await user.should_see("Reconnected to regsyncd.", retries=60)
    execution = start_execution(fake_daemon.state, "nginx")  # live again, no reload
    await user.should_see(marker=f"execution-{execution.id}", retries=40)
