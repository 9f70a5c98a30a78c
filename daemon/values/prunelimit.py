"""`prune_max`: how many target tags one prune may delete, a count or a percentage of the
target repository's tags. Parsed once, where the rule is read (the YAML, the API)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LIMIT = re.compile(r"(\d{1,9})(%?)")


@dataclass(frozen=True, slots=True)
class PruneLimit:
    """At most `value` deletions, or `value` percent of the target's tags."""

    value: int
    percent: bool = False

    def allows(self, deletions: int, total: int) -> bool:
        if self.percent:
            return deletions * 100 <= total * self.value
        return deletions <= self.value

    def __str__(self) -> str:
        return f"{self.value}{'%' if self.percent else ''}"


DEFAULT_LIMIT = PruneLimit(50, percent=True)


def parse_prune_limit(value: object) -> PruneLimit:
    """`prune_max` as written: an integer >= 0, or "N" / "N%" with N at most 100 for a percent.

    Raises:
        ValueError: anything else (the message says what is expected).
    """
    ok = isinstance(value, (int, str)) and not isinstance(value, bool)
    text = str(value).strip() if ok else None
    match = _LIMIT.fullmatch(text) if text is not None else None
    if match is None:
        raise ValueError(f"expected a number or a percentage such as '25%', got {value!r}")
    number, percent = int(match[1]), bool(match[2])
    if percent and number > 100:
        raise ValueError(f"a percentage is at most 100%, got {value!r}")
    return PruneLimit(number, percent)
