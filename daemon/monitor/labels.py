"""From the daemon's values to bounded metric labels and increments, pure.

Label rules (every label set stays bounded by the admin's own configuration):

    task        the task's name            as configured (no tag, digest or repository labels)
    registry    the registry's name        as configured (never a URL: it may carry a user)
    status      ExecutionStatus value      lower-case: succeeded, failed, stopped, interrupted
    outcome     Outcome value              copied, skipped, failed, deleted (pruned)
    method      HTTP method                one of METHODS, anything else "OTHER"
    code        HTTP status                "100".."599"; "error" when no answer came (network),
                                           "other" for a status outside that range
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from ..engine.events import Counters
from ..runtime.cron import next_fire, previous_fire

METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"})
OUTCOMES = ("copied", "skipped", "failed", "deleted")


def method_label(method: str) -> str:
    upper = method.upper()
    return upper if upper in METHODS else "OTHER"


def code_label(code: int | None) -> str:
    if code is None:
        return "error"
    return str(code) if 100 <= code <= 599 else "other"


@dataclass(frozen=True, slots=True)
class Increments:
    """What a counters update adds to the monotonic totals (never negative)."""

    copied: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    deleted: int = 0  # target tags pruned

    def by_outcome(self) -> dict[str, int]:
        return {"copied": self.copied, "skipped": self.skipped, "failed": self.failed,
                "deleted": self.deleted}


def increments(before: Counters, after: Counters) -> Increments:
    """The growth from `before` to `after`. A counter seen lower than before (an out-of-order
    snapshot) adds nothing: Prometheus counters only go up, and the next snapshot catches up."""
    return Increments(
        copied=max(after.tags_copied - before.tags_copied, 0),
        skipped=max(after.tags_skipped - before.tags_skipped, 0),
        failed=max(after.tags_failed - before.tags_failed, 0),
        bytes=max(after.bytes_copied - before.bytes_copied, 0),
        deleted=max(after.tags_deleted - before.tags_deleted, 0),
    )


def merged(before: Counters, after: Counters) -> Counters:
    """The high-water mark of two snapshots (what has been counted so far)."""
    return Counters(**{
        name: max(getattr(before, name), getattr(after, name))
        for name in Counters.__dataclass_fields__
    })


def schedule_period(cron: str, now: datetime, *, looks: int = 6) -> timedelta:
    """The longest gap between consecutive fire times around `now` (`looks` back, one ahead).

    "0 2 * * 1-5" fires daily but skips the weekend: its period is 3 days, so an alert at twice
    the period does not page every Monday morning.
    """
    earliest = now
    for _ in range(looks):
        earliest = previous_fire(cron, earliest - timedelta(seconds=1))
    fires = [earliest]
    while fires[-1] <= now or len(fires) < 2:  # forward to the first fire after now
        fires.append(next_fire(cron, fires[-1]))
    return max(b - a for a, b in pairwise(fires))
