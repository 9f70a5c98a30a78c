"""The throughput floor: a transfer that keeps moving fewer than `min_throughput` bytes/s over
`throughput_window` seconds is given up as temporary. The accounting (`RateWindow`) is pure:
the caller passes the clock; `under_floor` applies it to a trio cancel scope.

A trickle (a byte every few seconds) never trips a read timeout, yet holds a blob slot for
hours. The rule: at any instant `t` at least one window into the transfer, the bytes moved in
`(t - window, t]` must reach `min_throughput * window`. So time to first byte counts, a short
pause in a fast transfer does not, and a healthy transfer that has just finished keeps a whole
window for the registry to commit it.

Instead of a watchdog task, `Meter.moved` asks `deadline()` (when the floor breaks if no
further byte arrives) after every chunk and moves the cancel scope's deadline there.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trio

from ..base.errors import SlowTransferError


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


def too_slow(registry: str, what: str, rate: RateWindow, *, to: str | None = None) -> SlowTransferError:
    """The error for a transfer of `what` from `registry` that broke the floor."""
    floor = rate.floor
    where = f" (to {to!r})" if to else ""
    return SlowTransferError(
        f"{what}{where}: fewer than {floor.min_rate:g} bytes/s over {floor.window:g}s"
        f" ({rate.total} bytes moved in all; global.limits.min_throughput and"
        " throughput_window set the floor); the transfer was abandoned",
        registry=registry,
    )


class Meter:
    """One transfer's RateWindow on the trio clock, driving its cancel scope's deadline."""

    def __init__(self, floor: Floor) -> None:
        self.rate = RateWindow(floor, trio.current_time())
        self.scope = trio.CancelScope(deadline=self.rate.deadline())

    def moved(self, count: int) -> None:
        self.rate.add(trio.current_time(), count)
        self.scope.deadline = self.rate.deadline()

    async def metered(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`chunks`, each counted as it passes."""
        async for chunk in chunks:
            self.moved(len(chunk))
            yield chunk


@contextmanager
def under_floor(floor: Floor, too_slow: Callable[[RateWindow], BaseException]) -> Iterator[Meter]:
    """Run the block as long as its transfer stays above `floor` (count bytes with the Meter).

    Raises:
        too_slow(rate): the block was cancelled because the floor broke.
    """
    meter = Meter(floor)
    with meter.scope:
        yield meter
    if meter.scope.cancelled_caught:
        raise too_slow(meter.rate)
