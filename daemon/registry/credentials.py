"""Find the credentials for a registry host, the way docker, podman and skopeo users expect.

Order: credentials from regsync's own config; else docker's config.json (`credHelpers[host]`,
then `credsStore`, then `auths[host]`); else containers' auth.json (the same `auths` format).
Files that do not exist are skipped; files that exist but are broken are a ConfigError, since
silently going anonymous would turn a typo into a confusing 401 later.

Credential helpers are programs (`docker-credential-NAME get`, host on stdin, JSON on stdout).
Secrets never go to argv, and no error message quotes a helper's output or a file's content.
This module is synchronous on purpose: the client calls it through `trio.to_thread.run_sync`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import ConfigError

#: what docker puts in `Username` when the secret is an identity (refresh) token
IDENTITY_TOKEN_USER = "<token>"
HELPER_TIMEOUT = 10.0

_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HOST_LEVEL_PATHS = frozenset({"", "/", "/v1", "/v1/", "/v2", "/v2/"})


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and its secret (a password, or an identity token when username is <token>)."""

    username: str
    password: str = field(repr=False)

    @property
    def is_identity_token(self) -> bool:
        return self.username == IDENTITY_TOKEN_USER


def resolve_credentials(
    host: str,
    *,
    username: str | None = None,
    password: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Credentials | None:
    """Credentials for `host` ("host[:port]"), or None for anonymous access.

    Raises:
        ConfigError: half of an explicit pair, a broken config file, or a failing helper.
    """
    if username is not None or password is not None:
        if not username or password is None:
            raise ConfigError("both username and password must be given (or neither)")
        return Credentials(username, password)
    environ = os.environ if env is None else env
    docker = _docker_config_path(environ)
    found = _from_config_file(docker, host, environ)
    if found is not None:
        return found
    for path in _containers_auth_paths(environ):
        found = _from_config_file(path, host, environ)
        if found is not None:
            return found
    return None


def _docker_config_path(env: Mapping[str, str]) -> Path | None:
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    home = env.get("HOME")
    return Path(home) / ".docker" / "config.json" if home else None


def _containers_auth_paths(env: Mapping[str, str]) -> list[Path]:
    paths: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        paths.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    if env.get("XDG_CONFIG_HOME"):
        paths.append(Path(env["XDG_CONFIG_HOME"]) / "containers" / "auth.json")
    elif env.get("HOME"):
        paths.append(Path(env["HOME"]) / ".config" / "containers" / "auth.json")
    return paths


def _from_config_file(path: Path | None, host: str, env: Mapping[str, str]) -> Credentials | None:
    if path is None or not path.is_file():
        return None
    config = _load_json(path)
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        name = _lookup(helpers, host)
        if isinstance(name, str) and name:
            found = _ask_helper(name, host, env, f"credHelpers in {path}")
            if found is not None:
                return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = _ask_helper(store, host, env, f"credsStore in {path}")
        if found is not None:
            return found
    auths = config.get("auths")
    entry = _lookup(auths, host) if isinstance(auths, dict) else None
    return _from_auth_entry(entry, path, host) if isinstance(entry, dict) else None


def _ask_helper(name: str, host: str, env: Mapping[str, str], named_by: str) -> Credentials | None:
    try:
        return run_helper(name, helper_key(host), env)
    except ConfigError as exc:
        problem = str(exc)
    # raised outside the `except`: no chained context, as everywhere in this module
    raise ConfigError(
        f"{problem} ({named_by} chose it): install it, remove that entry, or give this registry"
        " a username and password in regsync's config"
    )


def _load_json(path: Path) -> dict[str, Any]:
    # Errors are raised outside the `except`, so no chained exception (whose text or `.doc` may
    # hold file content, i.e. secrets) travels with them; the message names the file only.
    problem = "not a JSON object"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        data, problem = None, type(exc).__name__
    if not isinstance(data, dict):
        raise ConfigError(f"cannot read {path}: {problem}")
    return data


def _from_auth_entry(entry: dict[str, Any], path: Path, host: str) -> Credentials | None:
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return Credentials(IDENTITY_TOKEN_USER, token)
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        return _decode_auth(auth, path, host)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and user and isinstance(secret, str):
        return Credentials(user, secret)
    return None


def _decode_auth(auth: str, path: Path, host: str) -> Credentials:
    try:
        user, sep, secret = base64.b64decode(auth, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, sep, secret = "", "", ""
    if not sep or not user:
        raise ConfigError(f"{path}: the 'auth' entry for {host} is not base64 of user:password")
    return Credentials(user, secret)


def normalise_host(key: str) -> str:
    """Docker's ConvertToHostname, plus Docker Hub's aliases folded into one name."""
    text = key.strip().lower()
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    hostname, _, _ = text.partition("/")
    return "index.docker.io" if hostname in _DOCKER_HUB_HOSTS else hostname


def helper_key(host: str) -> str:
    """What to send a credential helper: docker stores Docker Hub under its v1 URL."""
    return _DOCKER_HUB_KEY if normalise_host(host) == "index.docker.io" else host


def _lookup(table: dict[str, Any], host: str) -> Any:
    """The entry for `host`: an exact key first, else a host-level key naming the same host.

    Keys with a repository path (containers' `quay.io/org/repo`) are skipped: they are meant for
    one repository, and this lookup is per host.
    """
    if host in table:
        return table[host]
    wanted = normalise_host(host)
    for key, value in table.items():
        if normalise_host(key) == wanted and _path_of(key) in _HOST_LEVEL_PATHS:
            return value
    return None


def _path_of(key: str) -> str:
    text = key.split("://", 1)[-1]
    slash = text.find("/")
    return "" if slash < 0 else text[slash:]


def run_helper(name: str, server: str, env: Mapping[str, str]) -> Credentials | None:
    """Ask `docker-credential-NAME` for `server`; None when it has nothing stored.

    Raises:
        ConfigError: the helper is missing, times out, fails, or answers garbage. The message
            names the helper and its exit code, never its output (which may hold the secret).
    """
    program = f"docker-credential-{name}"
    path = shutil.which(program, path=env.get("PATH", os.defpath))
    if path is None:
        raise ConfigError(f"credential helper {program} is not on PATH")
    done = _run([path, "get"], server, env)
    if isinstance(done, str):
        raise ConfigError(f"credential helper {program} {done}")
    return _helper_answer(program, server, done)


def _run(
    argv: list[str], server: str, env: Mapping[str, str]
) -> subprocess.CompletedProcess[bytes] | str:
    """The finished helper, or why it did not finish. The exception (whose `output` may hold
    part of a secret) is dropped here rather than chained to an error."""
    try:
        return subprocess.run(
            argv,
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {HELPER_TIMEOUT:g} s"
    except OSError as exc:
        return f"could not run ({type(exc).__name__})"


def _helper_answer(
    program: str, server: str, done: subprocess.CompletedProcess[bytes]
) -> Credentials | None:
    if done.returncode != 0:
        if b"credentials not found" in done.stdout.lower() + done.stderr.lower():
            return None
        raise ConfigError(
            f"credential helper {program} failed with exit code {done.returncode}"
        )
    answer = _json_or_none(done.stdout)
    if not isinstance(answer, dict) or "Username" not in answer or "Secret" not in answer:
        raise ConfigError(
            f"credential helper {program} printed no Username/Secret JSON"
        )
    user, secret = answer["Username"], answer["Secret"]
    if not isinstance(user, str) or not isinstance(secret, str) or not secret:
        return None
    return Credentials(user, secret)


def _json_or_none(data: bytes) -> Any:
    """Parsed JSON or None; the decode error (which quotes the input) dies here."""
    try:
        return json.loads(data)
    except ValueError:
        return None
