"""The panel's door, as pure decisions (ui/guard.py, ui/paths.py), and the login's redirect in NiceGUI's user
simulation. The same rules against the real HTTP server are in test_standalone.py."""

from __future__ import annotations

import pytest
from conftest import TOKEN, simulate
from fake_daemon import FakeDaemon
from regsync.common.errors import SetupError
from regsync.ui.guard import (
    check_exposure,
    host_allowed,
    host_policy,
    origin_allowed,
    split_host,
)
from regsync.ui.paths import local_path
from regsync.ui.session import PanelSettings

LOOPBACK = host_policy("127.0.0.1")


@pytest.mark.parametrize(("header", "expected"), [
    ("localhost:8080", ("localhost", 8080)), ("LOCALHOST", ("localhost", None)),
    ("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:8080", ("::1", 8080)), ("[::1]", ("::1", None)),
    ("localhost.:8080", ("localhost", 8080)), ("::1", ("::1", None)),
    ("", None), ("a b", None), ("evil.example/x", None), ("u@localhost", None),
    ("localhost:", None), ("localhost:http", None), ("localhost:99999", None), ("[::1", None),
    ("[::1]x", None), ("[evil]:80", None), ("lоcalhost", None),
])
def test_host_headers_are_split_or_refused(header: str, expected: object) -> None:
    assert split_host(header) == expected


@pytest.mark.parametrize("header", ["localhost:8080", "127.0.0.1:8080", "[::1]:8080",
                                    "LocalHost", "127.0.0.1"])
def test_loopback_names_are_answered_by_default(header: str) -> None:
    assert host_allowed(header, LOOPBACK)


@pytest.mark.parametrize("header", [None, "attacker.example:8080", "attacker.example",
                                    "localhost.attacker.example", "127.0.0.2:8080",
                                    "0.0.0.0:8080", "[::]:8080", "", "localhost:8080, evil"])
def test_other_host_names_are_refused(header: str | None) -> None:
    """DNS rebinding: attacker.example resolving to 127.0.0.1 reaches a loopback panel."""
    assert not host_allowed(header, LOOPBACK)


def test_a_specific_bound_address_and_allowed_names_are_answered() -> None:
    policy = host_policy("192.0.2.7", ["Panel.Example.com", "[2001:db8::1]"])
    for header in ("192.0.2.7:8080", "panel.example.com", "[2001:db8::1]:80", "localhost:1"):
        assert host_allowed(header, policy), header
    assert not host_allowed("other.example.com", policy)
    wildcard = host_policy("0.0.0.0")
    assert not host_allowed("0.0.0.0:8080", wildcard) and host_allowed("localhost", wildcard)
    assert host_policy("::").names == LOOPBACK.names


@pytest.mark.parametrize("name", ["panel.example.com:8080", "http://panel.example.com",
                                  "panel.example.com/", "", "a b"])
def test_an_allowed_host_must_be_a_bare_name(name: str) -> None:
    with pytest.raises(SetupError, match="allowed host"):
        host_policy("127.0.0.1", [name])


@pytest.mark.parametrize(("origin", "host"), [
    (None, "localhost:8080"),  # not from a page: browsers always send Origin on websockets
    ("http://localhost:8080", "localhost:8080"), ("http://127.0.0.1:8080", "127.0.0.1:8080"),
    ("http://[::1]:8080", "[::1]:8080"), ("https://localhost", "localhost:443"),
    ("http://localhost", "localhost"), ("HTTP://LOCALHOST:8080", "localhost:8080"),
])
def test_the_panels_own_origin_is_accepted(origin: str | None, host: str) -> None:
    assert origin_allowed(origin, host, LOOPBACK)


@pytest.mark.parametrize(("origin", "host"), [
    ("http://evil.example", "localhost:8080"), ("http://evil.example:8080", "localhost:8080"),
    ("null", "localhost:8080"), ("http://localhost:9999", "localhost:8080"),
    ("http://127.0.0.1:8080", "localhost:8080"),  # another origin, even if the same socket
    ("file://", "localhost:8080"), ("http://localhost:8080/x", "localhost:8080"),
    ("http://localhost:8080", "evil.example:8080"), ("http://localhost:8080", None),
    ("http://localhost:bad", "localhost:8080"), ("", "localhost:8080"),
    ("http://u@localhost:8080", "localhost:8080"), ("http://localhost:8080?x", "localhost:8080"),
])
def test_other_origins_are_refused(origin: str, host: str | None) -> None:
    """Its socket.io endpoint allowed any origin, with credentials."""
    assert not origin_allowed(origin, host, LOOPBACK)


@pytest.mark.parametrize("target", ["/", "/tasks", "/tasks/edit?name=a%2Fb", "/executions/5",
                                    "/executions?task=x#top", "/login?next=/"])
def test_local_paths_are_kept(target: str) -> None:
    assert local_path(target) == target


@pytest.mark.parametrize("target", [
    "/\\evil.example/x",  # the reported one: browsers read "/\" as "//"
    "//evil.example/x", "\\\\evil.example", "http://evil.example/", "https:evil.example",
    "javascript:alert(1)", "evil.example", "", " /tasks", "/\t/evil.example", "/\n/evil.example",
    "/\r\n//evil.example", "/\x00", "/tasks\x7f", "/./evil", "/../x", "/a/../../b", "/ä",
    "/\u2028x", "/ tasks",
])
def test_anything_else_is_not_a_place_to_go_after_login(target: str) -> None:
    assert local_path(target) is None


def test_a_panel_beyond_loopback_needs_a_login_and_says_how() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.9"):
        check_exposure(host, login_required=False, how="HOW")
    for host in ("0.0.0.0", "::", "192.0.2.7", "panel.example.com"):
        check_exposure(host, login_required=True, how="HOW")
        with pytest.raises(SetupError, match=f"web panel on {host}: .*needs a login.*; HOW"):
            check_exposure(host, login_required=False, how="HOW")


@pytest.mark.asyncio
async def test_login_never_sends_the_browser_off_site(token_daemon: FakeDaemon) -> None:
    """`/login?next=/\\evil.example/x` redirected off-site; now it lands on the dashboard."""
    settings = PanelSettings(api_address=token_daemon.address, login_required=True, timeout=5)
    async with simulate(settings) as user:
        await user.open("/login?next=/%5Cevil.example/x")
        await user.should_see(marker="token")
        user.find(marker="token").type(TOKEN)
        user.find(marker="sign-in").click()
        await user.should_see("Succeeded today", retries=20)


@pytest.mark.asyncio
async def test_an_exposed_panel_signs_nobody_in_to_a_daemon_without_a_token(
        fake_daemon: FakeDaemon) -> None:
    """Beyond loopback, `--login` in front of a daemon that checks no token would take any
    "token": the panel checks that the daemon refuses calls without one."""
    settings = PanelSettings(api_address=fake_daemon.address, login_required=True,
                             exposed=True, timeout=5)
    async with simulate(settings) as user:
        await user.open("/tasks")
        await user.should_see(marker="token")
        user.find(marker="token").type("anything")
        user.find(marker="sign-in").click()
        await user.should_see("accepts calls without a token", retries=20)
        await user.open("/tasks")
        await user.should_see(marker="token")  # still at the door


@pytest.mark.asyncio
async def test_an_exposed_panel_signs_in_with_the_daemons_token(
        token_daemon: FakeDaemon) -> None:
    settings = PanelSettings(api_address=token_daemon.address, login_required=True,
                             exposed=True, timeout=5)
    async with simulate(settings) as user:
        await user.open("/tasks")
        await user.should_see(marker="token")
        user.find(marker="token").type(TOKEN)
        user.find(marker="sign-in").click()
        await user.should_see("No tasks yet", retries=20)
