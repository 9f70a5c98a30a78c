"""Registries page: add, edit (write-only password), test, delete with confirmation."""

from __future__ import annotations

import pytest
from fake_daemon import FakeDaemon, eventually
from nicegui.testing import User
from regsync.proto.regsync.v1 import regsync_pb2 as pb

pytestmark = pytest.mark.asyncio


async def test_add_registry_sends_password_and_shows_only_that_it_is_set(
        user: User, fake_daemon: FakeDaemon) -> None:
    await user.open("/registries")
    await user.should_see("No registries yet")
    user.find(marker="add-registry").click()
    user.find(marker="reg-name").type("hub")
    user.find(marker="reg-url").type("https://hub.example")
    user.find(marker="reg-username").type("alice")
    user.find(marker="reg-password").type("pa55word")
    user.find(marker="reg-qps").type("2.5")
    user.find(marker="reg-save").click()
    await user.should_see("Registry hub saved")
    spec = fake_daemon.calls("CreateRegistry")[-1]
    assert (spec.name, spec.url, spec.username, spec.password, spec.qps) == (
        "hub", "https://hub.example", "alice", "pa55word", 2.5)
    await user.should_see("set")
    await user.should_not_see("pa55word")


async def test_edit_keeps_the_password_unless_told(user: User, fake_daemon: FakeDaemon) -> None:
    fake_daemon.state.registries["hub"] = pb.Registry(name="hub", url="https://a",
                                                      password_set=True)
    await user.open("/registries")
    await user.should_see(marker="edit-hub")
    user.find(marker="edit-hub").click()
    user.find(marker="reg-qps").clear().type("3")
    user.find(marker="reg-save").click()
    await user.should_see("Registry hub saved")
    kept = fake_daemon.calls("UpdateRegistry")[-1]
    assert kept.qps == 3 and not kept.HasField("password")
    user.find(marker="edit-hub").click()
    user.find(marker="reg-clear-password").click()
    user.find(marker="reg-save").click()
    await eventually(lambda: len(fake_daemon.calls("UpdateRegistry")) == 2)
    cleared = fake_daemon.calls("UpdateRegistry")[-1]
    assert cleared.HasField("password") and cleared.password == ""
    await user.should_see("not set")


async def test_a_new_url_drops_the_stored_password_and_the_panel_says_so(
        user: User, fake_daemon: FakeDaemon) -> None:
    fake_daemon.state.registries["hub"] = pb.Registry(name="hub", url="https://a",
                                                      username="alice", password_set=True)
    await user.open("/registries")
    await user.should_see(marker="edit-hub")
    user.find(marker="edit-hub").click()
    user.find(marker="reg-url").clear().type("http://attacker.example")
    user.find(marker="reg-save").click()
    await user.should_see("Registry hub saved")
    await user.should_see("The stored password of hub was dropped")
    await user.should_see("not set")


async def test_delete_asks_first_and_reports_refusals(user: User,
                                                      fake_daemon: FakeDaemon) -> None:
    fake_daemon.add_registry("src")
    fake_daemon.add_registry("dst")
    fake_daemon.add_registry("spare")
    fake_daemon.add_task("nginx")
    await user.open("/registries")
    await user.should_see(marker="delete-spare")
    user.find(marker="delete-spare").click()
    assert not fake_daemon.calls("DeleteRegistry"), "nothing is deleted before confirming"
    user.find(marker="confirm").click()
    await user.should_see("Registry spare deleted")
    assert "spare" not in fake_daemon.state.registries
    user.find(marker="delete-src").click()
    user.find(marker="confirm").click()
    await user.should_see("is used by tasks: nginx")
    assert "src" in fake_daemon.state.registries


async def test_connection_test_shows_the_verdict(user: User, fake_daemon: FakeDaemon) -> None:
    fake_daemon.add_registry("src")
    await user.open("/registries")
    await user.should_see(marker="test-src")
    user.find(marker="test-src").click()
    await user.should_see("src: reachable, credentials accepted, registry/2.0")

