"""Field readers: each reads one typed value from a mapping, reports its own problems and returns
the default when the value is absent (YAML null counts as absent) or invalid."""

from __future__ import annotations

import difflib

from ..base.durations import duration_seconds
from ..values.names import REPOSITORY_MAX
from .env import substitute
from .problems import At, kind, shortened

# Limits: the longest value accepted per field, in characters. A longer value is refused on its
# length alone and never echoed, so a megabyte pasted by mistake (or sent by a hostile API client)
# is turned away at once instead of coming back in every message, log line and reply.
REGISTRY_NAME_MAX = 63  # the proto's promise: 1-63 of [A-Za-z0-9-_.]
RULE_NAME_MAX = 128  # printable, no control characters, no surrounding spaces
PATTERN_MAX = 1024  # OCI tags are at most 128 characters: a longer regex is a mistake
LIST_MAX = 256  # entries of include, exclude, architectures, platforms
TEXT_MAX = 4096  # any other string
RULES_MAX = 10_000  # sync_rules in one document
APPLIED_BYTES_MAX = 1024 * 1024  # a document sent to the daemon (Apply), UTF-8 encoded
FIELD_MAX = {
    "name": RULE_NAME_MAX,
    "registry": REGISTRY_NAME_MAX,
    "repository": REPOSITORY_MAX,
    "include": PATTERN_MAX,
    "exclude": PATTERN_MAX,
    "url": 2048,
    "username": 1024,
    "password": 65536,  # registry tokens used as passwords (ECR, GCR) run to a few KiB
    "semver": 256,
    "cron_expression": 256,
    "architectures": 64,
    "platforms": 128,
}


def read_mapping(value: object, at: At, known: tuple[str, ...]) -> dict[str, object] | None:
    """The mapping at `at`, with unknown keys reported (and the closest known key suggested)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        at.problem(f"expected a mapping, got {kind(value)}")
        return None
    for key in value:
        if not isinstance(key, str):
            at.problem(f"key {key!r} must be a string, got {kind(key)}")
        elif key not in known:
            close = difflib.get_close_matches(key[:64], known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            at.key(shortened(key)).problem(f"unknown key; {hint}")
    return {key: item for key, item in value.items() if isinstance(key, str)}


def read_text(fields: dict[str, object], name: str, at: At, *, required: bool = False) -> str | None:
    value, here = fields.get(name), at.key(name)
    if value is None:
        if required:
            here.problem("is required")
        return None
    if not isinstance(value, str):
        here.problem(f"expected a string, got {kind(value)}")
        return None
    if not fits(value, name, here):
        return None
    return substitute(value, here)


def fits(value: str, name: str, at: At) -> bool:
    """Whether `value` is within the field's limit; reports it (by length only) otherwise."""
    limit = FIELD_MAX.get(name, TEXT_MAX)
    if len(value) <= limit:
        return True
    at.problem(f"is {len(value)} characters long; the limit is {limit}")
    return False



def read_texts(fields: dict[str, object], name: str, at: At) -> tuple[str, ...]:
    value, here = fields.get(name), at.key(name)
    if value is None:
        return ()
    if not isinstance(value, list):
        here.problem(f"expected a list of strings, got {kind(value)}")
        return ()
    if len(value) > LIST_MAX:
        here.problem(f"has {len(value)} entries; the limit is {LIST_MAX}")
        return ()
    result: list[str] = []
    for position, item in enumerate(value):
        if not isinstance(item, str):
            here.index(position).problem(f"expected a string, got {kind(item)}")
        elif not fits(item, name, here.index(position)):
            continue
        elif (text := substitute(item, here.index(position))) is not None:
            result.append(text)
    return tuple(result)


def read_bool(fields: dict[str, object], name: str, at: At, default: bool) -> bool:
    value = fields.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        at.key(name).problem(f"expected true or false, got {kind(value)}")
        return default
    return value


def read_count(fields: dict[str, object], name: str, at: At, default: int) -> int:
    """An integer >= 1 (every count in the config is one); `default` when absent or invalid."""
    value = fields.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        at.key(name).problem(f"expected an integer, got {kind(value)}")
    elif value < 1:
        at.key(name).problem(f"must be at least 1, got {value}")
    else:
        return value
    return default


def read_positive(fields: dict[str, object], name: str, at: At) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        at.key(name).problem(f"expected a number, got {kind(value)}")
    elif not 0 < value < float("inf"):
        at.key(name).problem(f"must be a number greater than 0, got {value}")
    else:
        return float(value)
    return None


def read_duration(fields: dict[str, object], name: str, at: At, default: float) -> float:
    """A duration > 0: every one in the config is a wait or a limit."""
    value = fields.get(name)
    if value is None:
        return default
    try:
        seconds = duration_seconds(value)
    except (ValueError, TypeError) as exc:
        at.key(name).problem(str(exc))
        return default
    if seconds == 0:
        at.key(name).problem("must be greater than 0")
        return default
    return seconds

