"""Blob slots (`global.concurrency`) shared fairly between source registries.

A transfer holds its slot for as long as its source sends bytes, and a slot cannot be taken
back from a transfer that trickles. With one plain limiter, one slow source therefore held
every slot of the daemon and tasks on healthy registries sat at 0 B. The rules, decided by the
pure `grantable` below:

    1. No registry holds more than `cap(total) = total - 1` slots (all of them when total is 1),
       so one slot is always left for the transfers of any other registry.
    2. A freed slot goes to the waiting registry that holds the fewest slots (ties: whoever
       asked first), so registries share slots evenly rather than first come first served.
    3. A transfer slower than the throughput floor fails as temporary (engine/throughput.py)
       and queues again behind the others: slots held by several trickling sources come back
       within one floor window and rule 2 hands them to the registries that move bytes.

Rule 1 costs a lone registry one slot of parallelism; measured here, the registry rather than
the number of streams is the bottleneck at the default of 5 (DESIGN: "more parallel uploads can
be slower"). With `concurrency: 1` only rule 3 protects others.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio


def cap(total: int) -> int:
    """The most slots one registry may hold."""
    return max(1, total - 1)


@dataclass(frozen=True, slots=True)
class Waiter:
    key: str  # the source registry
    seq: int  # arrival order


def grantable(
    waiters: Sequence[Waiter], held: Mapping[str, int], total: int
) -> Waiter | None:
    """The waiter a free slot goes to now, or None (no free slot, or every waiter at its cap).

    Pure: `held` counts the slots each registry holds, `total` is `global.concurrency`.
    """
    if sum(held.values()) >= total:
        return None
    limit = cap(total)
    eligible = [w for w in waiters if held.get(w.key, 0) < limit]
    return min(eligible, key=lambda w: (held.get(w.key, 0), w.seq), default=None)


@dataclass(slots=True)
class _Ticket:
    waiter: Waiter
    event: trio.Event = field(default_factory=trio.Event)
    granted: bool = False


class BlobSlots:
    """The daemon's blob slots: `async with slots.slot(source_registry): ...transfer...`."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("total must be at least 1")
        self.total = total
        self._held: Counter[str] = Counter()
        self._queue: list[_Ticket] = []
        self._seq = itertools.count()

    def held(self, key: str) -> int:
        return self._held[key]

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Hold one slot for a transfer from registry `key` (waits its turn, cancellable)."""
        ticket = _Ticket(Waiter(key, next(self._seq)))
        self._queue.append(ticket)
        self._dispatch()
        try:
            await ticket.event.wait()  # a checkpoint even when granted at once
        except BaseException:
            if ticket.granted:
                self._release(key)
            else:
                self._queue.remove(ticket)
            raise
        try:
            yield
        finally:
            self._release(key)

    def _release(self, key: str) -> None:
        self._held[key] -= 1
        if not self._held[key]:
            del self._held[key]
        self._dispatch()

    def _dispatch(self) -> None:
        while True:
            chosen = grantable([t.waiter for t in self._queue], self._held, self.total)
            if chosen is None:
                return
            ticket = next(t for t in self._queue if t.waiter is chosen)
            self._queue.remove(ticket)
            self._held[chosen.key] += 1
            ticket.granted = True
            ticket.event.set()
