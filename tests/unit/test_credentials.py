"""Credential resolution from config, docker config.json, helpers and containers auth.json.

Every test builds its own HOME and PATH in a temp dir and passes them as `env`, so the machine's
real files never leak in. The credential helper is a real script on that PATH.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.registry import credentials
from regsync.daemon.registry.credentials import Credentials, resolve_credentials

HELPER = """#!/bin/sh
read server
printf '%s\\n' "$*" > "$HELPER_LOG.argv"
printf '%s\\n' "$server" > "$HELPER_LOG.stdin"
case "$server" in
  fail.example) echo "stderr mentions helper-secret" >&2; exit 3 ;;
  missing.example) echo "credentials not found in native keychain"; exit 1 ;;
  garbage.example) echo "helper-secret is not JSON" ; exit 0 ;;
  slow.example) exec sleep 30 ;;
esac
printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$server"
"""


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    bin_dir = tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-test"
    helper.write_text(HELPER)
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    return {
        "HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HELPER_LOG": str(tmp_path / "helper"),
    }


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def _docker(env: dict[str, str], data: object) -> Path:
    return _write(Path(env["HOME"]) / ".docker" / "config.json", data)


def test_nothing_configured_is_anonymous(env: dict[str, str]) -> None:
    assert resolve_credentials("localhost:5000", env=env) is None


def test_explicit_pair_wins_over_files(env: dict[str, str]) -> None:
    _docker(env, {"auths": {"localhost:5000": {"auth": _auth("file", "pw")}}})
    found = resolve_credentials("localhost:5000", username="me", password="pw2", env=env)
    assert found == Credentials("me", "pw2")


@pytest.mark.parametrize(("user", "password"), [("me", None), (None, "pw"), ("", "pw")])
def test_half_an_explicit_pair_is_a_config_error(
    env: dict[str, str], user: str | None, password: str | None
) -> None:
    with pytest.raises(ConfigError, match="both username and password"):
        resolve_credentials("h", username=user, password=password, env=env)


@pytest.mark.parametrize(
    "key", ["localhost:5000", "https://localhost:5000", "http://localhost:5000/v1/"]
)
def test_docker_auths_under_any_host_key_form(env: dict[str, str], key: str) -> None:
    _docker(env, {"auths": {key: {"auth": _auth("u", "p:with:colons")}}})
    assert resolve_credentials("localhost:5000", env=env) == Credentials("u", "p:with:colons")
    assert resolve_credentials("localhost:5001", env=env) is None


@pytest.mark.parametrize("host", ["registry-1.docker.io", "docker.io", "index.docker.io"])
def test_docker_hub_aliases(env: dict[str, str], host: str) -> None:
    _docker(env, {"auths": {"https://index.docker.io/v1/": {"auth": _auth("hub", "pw")}}})
    assert resolve_credentials(host, env=env) == Credentials("hub", "pw")


def test_docker_config_env_var(env: dict[str, str], tmp_path: Path) -> None:
    _write(tmp_path / "cfg" / "config.json", {"auths": {"h": {"auth": _auth("u", "p")}}})
    env["DOCKER_CONFIG"] = str(tmp_path / "cfg")
    assert resolve_credentials("h", env=env) == Credentials("u", "p")


def test_identity_token(env: dict[str, str]) -> None:
    _docker(env, {"auths": {"h": {"auth": _auth("u", "p"), "identitytoken": "refresh"}}})
    found = resolve_credentials("h", env=env)
    assert found == Credentials("<token>", "refresh")
    assert found is not None and found.is_identity_token


def test_cred_helper_for_host_gets_host_on_stdin_not_argv(env: dict[str, str]) -> None:
    _docker(
        env,
        {"credHelpers": {"h.example": "test"}, "auths": {"h.example": {"auth": _auth("a", "b")}}},
    )
    assert resolve_credentials("h.example", env=env) == Credentials("helper-user", "helper-secret")
    assert Path(env["HELPER_LOG"] + ".argv").read_text() == "get\n"
    assert Path(env["HELPER_LOG"] + ".stdin").read_text() == "h.example\n"


def test_creds_store_asks_docker_hub_by_its_v1_url(env: dict[str, str]) -> None:
    _docker(env, {"credsStore": "test"})
    assert resolve_credentials("registry-1.docker.io", env=env) is not None
    assert Path(env["HELPER_LOG"] + ".stdin").read_text() == "https://index.docker.io/v1/\n"


def test_helper_without_entry_falls_through_to_auths(env: dict[str, str]) -> None:
    _docker(
        env,
        {"credsStore": "test", "auths": {"missing.example": {"auth": _auth("file", "pw")}}},
    )
    assert resolve_credentials("missing.example", env=env) == Credentials("file", "pw")


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("fail.example", "docker-credential-test failed with exit code 3"),
        ("garbage.example", "docker-credential-test printed no Username/Secret JSON"),
    ],
)
def test_failing_helper_names_itself_never_its_output(
    env: dict[str, str], host: str, message: str
) -> None:
    _docker(env, {"credHelpers": {host: "test"}})
    with pytest.raises(ConfigError) as info:
        resolve_credentials(host, env=env)
    assert message in str(info.value)
    assert "helper-secret" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_missing_helper_says_which_file_chose_it_and_the_ways_out(env: dict[str, str]) -> None:
    path = _docker(env, {"credsStore": "nosuch"})
    with pytest.raises(ConfigError, match="docker-credential-nosuch is not on PATH") as info:
        resolve_credentials("h", env=env)
    message = str(info.value)
    assert f"credsStore in {path} chose it" in message
    assert "remove that entry, or give this registry a username and password" in message
    assert info.value.__context__ is None


async def test_a_credential_problem_names_the_registry_of_the_config(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from regsync.daemon.registry.client import RegistryClient
    from regsync.daemon.settings import GlobalSettings, RegistrySettings

    _docker(env, {"credsStore": "nosuch"})
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = RegistrySettings(name="hub", url="https://registry-1.docker.io")
    with pytest.raises(ConfigError) as info:
        await RegistryClient.connect(settings, GlobalSettings())
    assert str(info.value).startswith("registry 'hub': credentials: credential helper")


def test_helper_timeout(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "HELPER_TIMEOUT", 0.3)
    _docker(env, {"credHelpers": {"slow.example": "test"}})
    with pytest.raises(ConfigError, match="docker-credential-test timed out after 0.3 s") as info:
        resolve_credentials("slow.example", env=env)
    assert info.value.__context__ is None


def test_broken_files_name_the_file_not_the_content(env: dict[str, str]) -> None:
    path = _docker(env, '{"auths": {"h": {"auth": "c2VjcmV0' + "}")
    with pytest.raises(ConfigError) as info:
        resolve_credentials("h", env=env)
    assert str(path) in str(info.value) and "c2VjcmV0" not in str(info.value)
    assert info.value.__context__ is None  # a JSONDecodeError would carry the file in `.doc`
    _docker(env, {"auths": {"h": {"auth": "!!not base64!!"}}})
    with pytest.raises(ConfigError, match="not base64 of user:password"):
        resolve_credentials("h", env=env)
    _docker(env, {"auths": {"h": {"auth": base64.b64encode(b"no-colon").decode()}}})
    with pytest.raises(ConfigError, match="not base64 of user:password"):
        resolve_credentials("h", env=env)


def test_containers_auth_files_in_order(env: dict[str, str], tmp_path: Path) -> None:
    home_file = Path(env["HOME"]) / ".config" / "containers" / "auth.json"
    _write(home_file, {"auths": {"h": {"auth": _auth("home", "p")}}})
    assert resolve_credentials("h", env=env) == Credentials("home", "p")
    _write(
        tmp_path / "run" / "containers" / "auth.json", {"auths": {"h": {"auth": _auth("run", "p")}}}
    )
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    assert resolve_credentials("h", env=env) == Credentials("run", "p")
    env["REGISTRY_AUTH_FILE"] = str(
        _write(tmp_path / "a.json", {"auths": {"h": {"auth": _auth("f", "p")}}})
    )
    assert resolve_credentials("h", env=env) == Credentials("f", "p")
    _docker(env, {"auths": {"h": {"auth": _auth("docker", "p")}}})
    assert resolve_credentials("h", env=env) == Credentials("docker", "p")


def test_repository_scoped_keys_are_not_used_for_the_host(env: dict[str, str]) -> None:
    home_file = Path(env["HOME"]) / ".config" / "containers" / "auth.json"
    _write(home_file, {"auths": {"quay.io/org/repo": {"auth": _auth("robot", "p")}}})
    assert resolve_credentials("quay.io", env=env) is None


def test_repr_never_shows_the_password() -> None:
    text = repr(Credentials("alice", "s3cr3t-value"))
    assert "alice" in text and "s3cr3t-value" not in text
