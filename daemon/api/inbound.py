"""Protobuf messages -> the daemon's values (specs, queries, windows). Pure: no I/O beyond what
config validation reads.

Inbound specs are validated by `config.validate_document`, the one dict-level validation the YAML
loader runs too, so a task created through the API obeys exactly the rules of the file: the spec
becomes a one-item document in the seed's shape (plain dicts, never YAML text) and its problem
lines are renamed to the API's fields ("task.tags.include[1]: ..."). API strings are literal:
every "$" is escaped before `${VAR}` substitution can see it, so nothing a client sends makes the
daemon read its environment. The registry password never goes through the validation at all (it
sees a placeholder); it is stored in the template form of a literal
(`runtime.task_inputs.literal_template`), so a "${VAR}" password is those six characters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from datetime import UTC
from typing import Any

from regsync.proto.regsync.v1 import regsync_pb2 as pb

from ..base.errors import ConfigError
from ..config import ConfigProblems, validate_document
from ..engine.events import COUNTER_FIELDS
from ..runtime.task_inputs import literal_template
from ..settings import Config, RegistrySettings, SyncRule
from ..store import records as model
from .outbound import STATUS_TO_PB, TRIGGER_TO_PB

_PLACEHOLDER_URL = "https://registry.invalid"
_PLACEHOLDER_PASSWORD = "placeholder"
# Document paths whose API field has another name.
_RENAMED = {"registry.ratelimit.qps": "registry.qps"}
_TRIGGER_FROM_PB = {value: key for key, value in TRIGGER_TO_PB.items()}
_STATUS_FROM_PB = {value: key for key, value in STATUS_TO_PB.items()}

# Specs --------------------------------------------------------------------------------------------

def registry_settings(
    spec: pb.RegistrySpec, *, update: bool = False
) -> tuple[RegistrySettings, bool]:
    """The validated settings of `spec`, and whether to keep the stored password.

    On update an absent password means "keep it" (returned as None with keep = True: the store
    keeps it only for the same url and user); a present but empty one removes it. A password is
    returned in its stored (template) form.

    Raises:
        ConfigError: naming the field, e.g. "registry.url: must start with https:// or http://".
    """
    if not spec.name:
        raise ConfigError("registry.name: is required")
    keep = update and not spec.HasField("password")
    password = spec.password if spec.HasField("password") else ""
    fields: dict[str, Any] = {
        "url": literal(spec.url) or None,
        "username": literal(spec.username) or None,
        "password": _PLACEHOLDER_PASSWORD if (password or (keep and spec.username)) else None,
        "insecure": spec.insecure,
        "ca_file": literal(spec.ca_file) or None,
        "ratelimit": {"qps": spec.qps} if spec.qps else None,
    }
    document = {"registries": {spec.name: fields}}
    config = validated(document, {f'registries "{spec.name}": ': "registry."})
    settings = config.registries[spec.name]
    return dataclasses.replace(settings, password=literal_template(password) or None), keep


def sync_rule(spec: pb.TaskSpec, registries: Collection[str], *, field: str = "task") -> SyncRule:
    """The validated rule of `spec`; `registries` are the names known to the daemon.

    Raises:
        ConfigError: naming the field, e.g. "task.tags.include[1]: invalid regular expression".
    """
    document = {
        "registries": {name: {"url": _PLACEHOLDER_URL} for name in registries},
        "sync_rules": [_rule_fields(spec)],
    }
    label = f'sync_rules[0] "{literal(spec.name)}": ' if spec.name else "sync_rules[0]: "
    return validated(document, {label: f"{field}."}).rules[0]


def preview_rule(spec: pb.TaskSpec, registries: Collection[str], *, listing: bool) -> SyncRule:
    """The rule to preview filters with: the task need not exist, so a missing name or target is
    filled in, and so is the source when tags are given (`listing` False: nothing is contacted).
    """
    filled = pb.TaskSpec()
    filled.CopyFrom(spec)
    filled.name = spec.name or "preview"
    known = set(registries)
    if not listing and not spec.HasField("source"):
        known.add("preview")
        filled.source.CopyFrom(pb.Endpoint(registry="preview", repository="preview/source"))
    if not spec.HasField("target"):  # a glob's target must repeat its wildcards
        known.add("preview")
        source = filled.source.repository
        filled.target.CopyFrom(pb.Endpoint(registry="preview", repository=(
            f"preview/{source}" if "*" in source else "preview/target")))
    return sync_rule(filled, sorted(known), field="spec")


def execution_query(request: pb.ListExecutionsRequest) -> model.ExecutionQuery:
    """Raises: ConfigError for a negative limit or id, or an unspecified status."""
    if request.limit < 0:
        raise ConfigError(f"limit: must not be negative, got {request.limit}")
    if request.before_id < 0:
        raise ConfigError(f"before_id: must not be negative, got {request.before_id}")
    statuses = []
    for position, value in enumerate(request.status):
        if value not in _STATUS_FROM_PB:
            raise ConfigError(f"status[{position}]: not a valid execution status ({value})")
        statuses.append(_STATUS_FROM_PB[value])
    return model.ExecutionQuery(
        task=request.task or None,
        statuses=tuple(statuses),
        limit=min(request.limit or 50, 500),
        before_id=request.before_id or None,
    )


def log_window(request: pb.LogsRequest) -> tuple[int, int]:
    """(offset, limit), the limit capped. Raises: ConfigError for negative numbers."""
    if request.offset < 0:
        raise ConfigError(f"offset: must not be negative, got {request.offset}")
    if request.limit < 0:
        raise ConfigError(f"limit: must not be negative, got {request.limit}")
    return request.offset, min(request.limit or model.LOGS_PAGE_MAX, model.LOGS_PAGE_MAX)


def literal(text: str) -> str:
    """`text` as a literal value: "$" doubled, so `${VAR}` substitution gives it back as sent."""
    return text.replace("$", "$$")


def _rule_fields(spec: pb.TaskSpec) -> dict[str, Any]:
    def endpoint(value: pb.Endpoint) -> dict[str, Any] | None:
        return {
            "registry": literal(value.registry) or None,
            "repository": literal(value.repository) or None,
            **({"exclude": [literal(e) for e in value.exclude]} if value.exclude else {}),
        }

    tags = spec.tags
    return {
        "name": literal(spec.name) or None,
        "source": endpoint(spec.source) if spec.HasField("source") else None,
        "target": endpoint(spec.target) if spec.HasField("target") else None,
        "tags": {
            "include": [literal(p) for p in tags.include],
            "exclude": [literal(p) for p in tags.exclude],
            "semver": literal(tags.semver) or None,
            # 0 means "all" in the proto; the YAML rejects 0, so it is absent there
            "latest": tags.latest or None,
        },
        "architectures": [literal(a) for a in spec.architectures],
        "platforms": [literal(p) for p in spec.platforms],
        "enabled": spec.enabled,
        "cron_expression": literal(spec.cron_expression) or None,
        "referrers": _referrers(spec),
        "prune": spec.prune,
        **({"prune_max": literal(spec.prune_max)} if spec.prune_max else {}),
    }


def _referrers(spec: pb.TaskSpec) -> bool | dict[str, list[str]]:
    """The YAML form: false, true (unset: an older client) or the artifact types to follow."""
    if spec.HasField("referrers") and not spec.referrers:
        return False
    types = [literal(t) for t in spec.referrer_artifact_types]
    return {"artifact_types": types} if types else True


def validated(document: Mapping[str, Any], prefixes: Mapping[str, str]) -> Config:
    """`validate_document` of a document built in memory, its problems renamed to API fields."""
    try:
        return validate_document(dict(document), source="", env={})
    except ConfigProblems as exc:
        raise ConfigProblems([_rename(line, prefixes) for line in exc.problems]) from None


def _rename(line: str, prefixes: Mapping[str, str]) -> str:
    for prefix, field in prefixes.items():
        if line.startswith(prefix):
            line = field + line[len(prefix) :]
            break
    for old, new in _RENAMED.items():
        if line.startswith(old + ":"):
            line = new + line[len(old) :]
    return line



# Records and windows --------------------------------------------------------------------------

def execution_record(message: pb.Execution) -> model.ExecutionRecord:
    """The inverse of `execution` (for clients, and to prove the mapping loses nothing)."""
    return model.ExecutionRecord(
        id=message.id,
        task=message.task,
        trigger=_TRIGGER_FROM_PB[message.trigger],
        status=_STATUS_FROM_PB[message.status],
        started=message.started.ToDatetime(tzinfo=UTC),
        finished=message.finished.ToDatetime(tzinfo=UTC) if message.HasField("finished") else None,
        counters=model.counters_from({n: getattr(message.counters, n) for n in COUNTER_FIELDS}),
        error=message.error,
        parent_id=message.parent_id or None,
        daemon=message.daemon,
        daemon_id=message.daemon_id or None,
    )




def results_window(request: pb.ExecutionRequest) -> tuple[int, int]:
    """(after, limit) of GetExecution's page. Raises: ConfigError for a negative page_size or a
    page_token this daemon did not give (tokens are a result's position, digits only)."""
    if request.page_size < 0:
        raise ConfigError(f"page_size: must not be negative, got {request.page_size}")
    token = request.page_token
    if token and not (token.isascii() and token.isdigit() and len(token) <= 18):
        raise ConfigError("page_token: not a token this daemon gave (pass next_page_token)")
    limit = min(request.page_size or model.RESULTS_PAGE_DEFAULT, model.RESULTS_PAGE_MAX)
    return int(token or 0), limit

