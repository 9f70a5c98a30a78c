"""The throughput floor: a transfer that keeps moving fewer than `min_throughput` bytes/s over
`throughput_window` seconds is given up as temporary. Pure: the caller passes the clock.

A trickle (a byte every few seconds) never trips a read timeout, yet holds a blob slot for
hours. The rule: at any instant `t` at least one window into the transfer, the bytes moved in
`(t - window, t]` must reach `min_throughput * window`. So time to first byte counts, a short
pause in a fast transfer does not, and a healthy transfer that has just finished keeps a whole
window for the registry to commit it.

Instead of a watchdog task, the engine asks `deadline()` (when the floor breaks if no further
byte arrives) after every chunk and moves its cancel scope's deadline there.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Floor:
    min_rate: float  # bytes per second
    window: float  # seconds

    @property
    def bytes_per_window(self) -> float:
        return self.min_rate * self.window


class RateWindow:
    """Bytes moved by one transfer over time, kept to what the last window needs.

    Samples are (time, cumulative bytes); samples closer than 1/100 of the window merge into
    one (stated as reached at the earlier time, so the floor errs strict by at most that).
    """

    def __init__(self, floor: Floor, start: float) -> None:
        self.floor = floor
        self.start = start
        self.total = 0
        self._times: list[float] = [start]
        self._totals: list[int] = [0]
        self._grain = floor.window / 100

    def add(self, now: float, count: int) -> None:
        """`count` more bytes moved at `now`."""
        self.total += count
        if now - self._times[-1] < self._grain and len(self._times) > 1:
            self._totals[-1] = self.total
        else:
            self._times.append(now)
            self._totals.append(self.total)
        self._prune(now)

    def _prune(self, now: float) -> None:
        # keep the newest sample at or before now - window: it is what cum(now - window) reads
        cut = bisect.bisect_right(self._times, now - self.floor.window) - 1
        if cut > 0:
            del self._times[:cut], self._totals[:cut]

    def deadline(self) -> float:
        """The instant the floor breaks if no more bytes arrive.

        It breaks at the first `t >= start + window` where `total - cum(t - window)` falls
        below the floor's bytes per window; `cum` only grows with time, so that is `window`
        after the first sample whose cumulative count exceeds `total - floor`.
        """
        threshold = self.total - self.floor.bytes_per_window
        first = bisect.bisect_right(self._totals, threshold) if threshold >= 0 else 0
        at = self._times[first] if first < len(self._times) else self._times[-1]
        return max(self.start, at) + self.floor.window
