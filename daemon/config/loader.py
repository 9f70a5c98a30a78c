"""The front door: a file, a YAML text or an already-built document in, a validated `Config` out.

`validate_document` is the one dict-level validation: the YAML loader and the API's inbound
conversion both call it, so a task created through the API obeys exactly the rules of the file.
"""

from __future__ import annotations

import os
import types
from collections.abc import Collection, Mapping
from typing import Any

from ..settings import Config, GlobalSettings, Limits, RetrySettings
from .fields import APPLIED_BYTES_MAX, read_count, read_duration, read_mapping
from .notifications import read_notifications
from .problems import At, ConfigProblems, Report, kind
from .registries import read_registries
from .rules import read_rules
from .yamlload import load_yaml, refuse_aliases

SUPPORTED_VERSION = "1.0"


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path` (relative `ca_file`s are relative to it).

    Raises:
        ConfigError: (a ConfigProblems) the file is unreadable or invalid; lists every problem.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigProblems([f"{source}: cannot read the config file: {reason}"]) from None
    base_dir = os.path.dirname(os.path.abspath(source))
    return parse_config(text, source=source, env=env, base_dir=base_dir)


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    base_dir: str | None = None,
    environment_references: bool = True,
    known_registries: Collection[str] = (),
) -> Config:
    """Validate config `text`; `source` names it in messages, `env` defaults to os.environ.

    `known_registries` are names rules may use beyond the document's own (the daemon's store,
    when a file is applied to it).

    `environment_references` False refuses `${VAR}` (`$$` still means "$"): for a document a
    client sent, which must never make the daemon read its own environment.

    Raises:
        ConfigError: (a ConfigProblems) listing every problem found.
    """
    document = load_yaml(text, source)
    return validate_document(document, source=source, env=env, base_dir=base_dir,
                             environment_references=environment_references,
                             known_registries=known_registries)


def validate_document(
    document: object,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    base_dir: str | None = None,
    environment_references: bool = True,
    known_registries: Collection[str] = (),
) -> Config:
    """Validate an already-parsed document (plain dicts, lists and scalars, as YAML gives them):
    the one validation behind `parse_config` and the API's specs, with `parse_config`'s options.

    Raises:
        ConfigError: (a ConfigProblems) listing every problem found.
    """
    environment = os.environ if env is None else env
    report = Report(source, environment, base_dir or os.getcwd())
    report.environment_references = environment_references
    report.known_registries = [n for n in known_registries]
    root = At(report, "")
    if document is None:
        root.problem("the file is empty; expected a mapping with version, registries, sync_rules")
    elif not isinstance(document, dict):
        root.problem(f"the top level must be a mapping, got {kind(document)}")
    if not isinstance(document, dict):
        raise ConfigProblems(report.problems)
    config = _config(document, report)
    if report.problems:
        raise ConfigProblems(report.problems)
    return config


def parse_applied(text: str, *, source: str, known_registries: Collection[str] = ()) -> Config:
    """`parse_config` for a document an API client sent (`regsyncctl apply`): hostile input.

    On top of the file checks: at most `APPLIED_BYTES_MAX` bytes, and no YAML anchors or aliases
    (a few KB of nested aliases expand to gigabytes of work; files the daemon reads itself at
    start may keep them); `${VAR}` is refused, so the daemon's environment is never read for a
    client. CPU-bound: run it off the trio thread.

    Raises:
        ConfigError: (a ConfigProblems) listing every problem found.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > APPLIED_BYTES_MAX:
        raise ConfigProblems(
            [f"{source}: the document is {size} bytes; the limit is {APPLIED_BYTES_MAX}"]
        )
    refuse_aliases(text, source)
    return parse_config(text, source=source, env={}, environment_references=False,
                        known_registries=known_registries)

# Sections ------------------------------------------------------------------------------------

_TOP_KEYS = ("version", "global", "registries", "sync_rules", "notifications")
_GLOBAL_KEYS = ("concurrency", "retry", "timeout", "limits")
_RETRY_KEYS = ("max_attempts", "initial_interval", "max_interval")
_LIMIT_KEYS = ("max_tags", "max_listing_bytes", "min_throughput", "throughput_window")
_DEFAULTS = GlobalSettings()


def _config(document: dict[Any, object], report: Report) -> Config:
    root = At(report, "")
    fields = read_mapping(document, root, _TOP_KEYS) or {}
    version = _version(fields.get("version"), root.key("version"))
    global_ = _global(fields.get("global"), At(report, "global"))
    registries = read_registries(fields.get("registries"), root.key("registries"))
    usable = list(registries) + [n for n in report.known_registries if n not in registries]
    rules = read_rules(fields.get("sync_rules"), root.key("sync_rules"), usable)
    notifications = read_notifications(fields.get("notifications"), report)
    return Config(version, global_, types.MappingProxyType(registries), rules, notifications)


def _version(value: object, at: At) -> str:
    # An unquoted `version: 1.0` is a YAML float; accepting it saves users a baffling error.
    if value is None or value == SUPPORTED_VERSION or (type(value) is float and value == 1.0):
        return SUPPORTED_VERSION
    shown = repr(value) if isinstance(value, (str, int, float)) else kind(value)
    at.problem(f'unsupported version {shown}; this regsync reads version "{SUPPORTED_VERSION}"')
    return SUPPORTED_VERSION


def _global(value: object, at: At) -> GlobalSettings:
    fields = read_mapping(value, at, _GLOBAL_KEYS)
    if fields is None:
        return GlobalSettings()
    retry_at = at.key("retry")
    retry = read_mapping(fields.get("retry"), retry_at, _RETRY_KEYS) or {}
    before = at.count()
    initial = read_duration(retry, "initial_interval", retry_at, _DEFAULTS.retry.initial_interval)
    maximum = read_duration(retry, "max_interval", retry_at, _DEFAULTS.retry.max_interval)
    if at.count() == before and initial > maximum:
        retry_at.key("initial_interval").problem(
            f"must not exceed retry.max_interval ({initial:g}s > {maximum:g}s)"
        )
    attempts = read_count(retry, "max_attempts", retry_at, _DEFAULTS.retry.max_attempts)
    return GlobalSettings(
        concurrency=read_count(fields, "concurrency", at, _DEFAULTS.concurrency),
        retry=RetrySettings(attempts, initial, maximum),
        timeout=read_duration(fields, "timeout", at, _DEFAULTS.timeout),
        limits=_limits(fields.get("limits"), at.key("limits")),
    )


def _limits(value: object, at: At) -> Limits:
    fields = read_mapping(value, at, _LIMIT_KEYS) or {}
    d = _DEFAULTS.limits
    return Limits(
        max_tags=read_count(fields, "max_tags", at, d.max_tags),
        max_listing_bytes=read_count(fields, "max_listing_bytes", at, d.max_listing_bytes),
        min_throughput=read_count(fields, "min_throughput", at, d.min_throughput),
        throughput_window=read_duration(fields, "throughput_window", at, d.throughput_window),
    )

