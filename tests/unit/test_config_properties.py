"""Properties of the config loader that examples cannot pin down: any input at all ends in a Config
or a ConfigError, durations round-trip, and secrets from the environment never leak."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from regsync.daemon.base.durations import duration_seconds
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.config import parse_config
from regsync.daemon.settings import Config

SEED: dict[str, Any] = {
    "version": "1.0",
    "global": {
        "concurrency": 5,
        "retry": {"max_attempts": 5, "initial_interval": "1s", "max_interval": "30s"},
        "timeout": "10m",
    },
    "registries": {
        "dockerhub": {
            "url": "https://registry-1.docker.io",
            "username": "${DOCKERHUB_USER}",
            "password": "${DOCKERHUB_PASSWORD}",
        },
        "harbor": {
            "url": "https://harbor.example.com",
            "username": "admin",
            "password": "${SECRET}",
            "ratelimit": {"qps": 50},
        },
    },
    "sync_rules": [
        {
            "name": "nginx-sync",
            "source": {"registry": "dockerhub", "repository": "library/nginx"},
            "target": {"registry": "harbor", "repository": "prod/nginx"},
            "tags": {"include": ["^1\\.2[0-9]\\.*"], "exclude": [".*-alpine"], "latest": 10},
            "architectures": ["amd64", "arm64"],
            "enabled": True,
            "cron_expression": "0 2 * * *",
        }
    ],
}
ENV = {"DOCKERHUB_USER": "dh-user", "DOCKERHUB_PASSWORD": "dh-pass", "SECRET": "hb-pass"}

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | _text
    | st.sampled_from(["${X}", "1s"])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


def _paths(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the seed document a value can be swapped for junk (and every container)."""
    children: list[tuple[Any, object]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    found = [prefix] if prefix else []
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


_PATHS = _paths(SEED)


def _mutated(path: tuple[Any, ...], value: object) -> str:
    document = copy.deepcopy(SEED)
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return yaml.dump(document, Dumper=yaml.CSafeDumper, allow_unicode=True)


def _load(text: str, env: dict[str, str] = ENV) -> Config | ConfigError:
    """The config or the ConfigError; anything else propagates and fails the property."""
    try:
        return parse_config(text, source="prop.yaml", env=env)
    except ConfigError as exc:
        return exc


# Durations --------------------------------------------------------------------------------------

_parts = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(["h", "m", "s", "ms", "us", "ns"])),
    min_size=1,
    max_size=4,
)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@given(_parts)
def test_duration_text_parses_to_the_sum_of_its_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{amount}{unit}" for amount, unit in parts)
    expected = sum(amount * _UNIT_SECONDS[unit] for amount, unit in parts)
    assert abs(duration_seconds(text) - expected) <= 1e-9 * max(1.0, expected)


@given(st.one_of(_text, st.integers(), st.floats(), st.booleans(), st.none()))
def test_parse_duration_only_raises_value_or_type_errors(value: Any) -> None:
    try:
        assert duration_seconds(value) >= 0
    except (ValueError, TypeError) as exc:
        assert str(exc)  # a reason the config loader shows after the field


# Any input ends in a Config or a ConfigError ----------------------------------------------------


@given(st.text(st.characters(exclude_categories=["Cs"])))
@example("[" * 5000)
@example("a: 2024-13-45")
@example("a: &x [*x]\nregistries: &r {r: *r}")
@example("? [a]\n: b")
@example("a: !!binary x")
@example("registries: {1: {url: 'http://a'}}\nsync_rules: [{name: 1}]")
def test_junk_text_never_raises_anything_but_config_error(text: str) -> None:
    _load(text)


@given(st.sampled_from(_PATHS), _values)
@settings(max_examples=200)
def test_junk_in_any_field_never_raises_anything_but_config_error(
    path: tuple[Any, ...], value: object
) -> None:
    result = _load(_mutated(path, value))
    if isinstance(result, ConfigError):
        problems = getattr(result, "problems", [])
        assert problems and all(line.startswith("prop.yaml: ") for line in problems)
        # one problem per line, whatever the junk echoed in a message contains
        assert str(result).splitlines()[-len(problems) :] == problems


# Secrets ----------------------------------------------------------------------------------------

_secrets = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=6).map(
    lambda text: f"PW<{text}>"
)


@given(_secrets, st.sampled_from(_PATHS), _values)
@settings(max_examples=100)
def test_env_password_never_appears_in_errors_or_reprs(
    secret: str, path: tuple[Any, ...], value: object
) -> None:
    result = _load(_mutated(path, value), {**ENV, "SECRET": secret})
    if isinstance(result, ConfigError):
        assert secret not in str(result) and secret not in repr(result)
        assert all(secret not in line for line in getattr(result, "problems", []))
    else:
        assert secret not in repr(result) and secret not in str(result)
        if ("registries", "harbor", "password")[: len(path)] != path:
            assert result.registries["harbor"].password == secret
