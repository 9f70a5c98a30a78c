"""Durations in the seed config's notation ("1s", "500ms", "10m", "1h30m"), as float seconds.

The seed tool was written in Go, so its users write Go's `time.ParseDuration` syntax; a bare number
(YAML int or float, or a numeric string) means seconds. Pure, and tested apart from the config
loader, which names the field when a value is refused.
"""

from __future__ import annotations

import math
import re

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign, as Go accepts
    "μs": 1e-6,  # U+03BC greek mu, as Go accepts
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# Longest units first so "ms" is not read as "m" followed by garbage.
_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_BARE = re.compile(_NUMBER)
_EXAMPLES = "e.g. 30s, 500ms, 10m, 1h30m, or a number of seconds"


def duration_seconds(value: object) -> float:
    """Seconds in `value`; ValueError/TypeError with the reason (not the field) if not a duration.

    Negative, infinite and NaN durations are refused: every duration in the config is a wait or a
    limit, and a negative one is always a typo.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a duration ({_EXAMPLES}), got {type(value).__name__}")
    if isinstance(value, str):
        seconds = _parse_text(value)
    else:
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"duration {value!r} is too large") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"duration {value!r} is not a finite number")
    if seconds < 0:
        raise ValueError(f"duration {value!r} is negative")
    return seconds


def _parse_text(text: str) -> float:
    stripped = text.strip()
    if _BARE.fullmatch(stripped):
        return float(stripped)
    if stripped.startswith("-"):
        raise ValueError(f"duration {text!r} is negative")
    total, position = 0.0, 0
    while position < len(stripped):
        part = _PART.match(stripped, position)
        if part is None:
            raise ValueError(f"invalid duration {text!r} ({_EXAMPLES})")
        total += float(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    if not stripped:
        raise ValueError(f"empty duration ({_EXAMPLES})")
    return total
