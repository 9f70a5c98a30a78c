"""JSON from registries, parsed with a bound on nesting. Pure.

`json.loads` recurses once per level: a body of 100,000 `[` raises RecursionError (not a
ValueError, so it escaped the "invalid JSON" paths as an internal error), and a document just
under the interpreter's limit parses but breaks later code that walks or re-serialises it
(an index rewrite). No registry document needs more than a handful of levels; annotations and
labels are flat strings.
"""

from __future__ import annotations

import json

#: manifests nest ~5 levels, error bodies 3, token answers 1
MAX_DEPTH = 64


class TooDeepError(ValueError):
    """The JSON is nested deeper than the bound (a ValueError: callers treat it as invalid)."""


def parse_json(body: bytes | str, *, max_depth: int = MAX_DEPTH) -> object:
    """The document in `body`.

    Raises:
        TooDeepError: nested deeper than `max_depth` arrays/objects.
        ValueError: not JSON (JSONDecodeError) or not UTF-8 (UnicodeDecodeError).
    """
    try:
        value = json.loads(body)
    except RecursionError:
        raise TooDeepError(f"JSON nested deeper than {max_depth} levels") from None
    if _deeper_than(value, max_depth):
        raise TooDeepError(f"JSON nested deeper than {max_depth} levels")
    return value


def _deeper_than(value: object, limit: int) -> bool:
    """Iterative (an explicit stack): the check itself must not recurse."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict):
            children: list[object] = list(current.values())
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth + 1 > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
