"""Fan-out of live execution events to watchers (gRPC Watch streams, the panel).

Publishing never blocks the engine: each watcher has a bounded buffer, and a watcher that falls
that far behind loses progress ticks (the next one carries the totals anyway) but is told how
many events it missed in a log line. A watcher that joins mid-run first gets the current state.

On a shared store, executions other daemons run reach the hub from the store (feed.py) as
`remote` items: watchers get them like any other, listeners (metrics, webhooks, the console
log) do not, since those belong to the daemon that runs the execution.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import trio

from ..engine.events import Counters, LogEvent
from ..store.records import ExecutionRecord
from .watch import WatchItem

_BUFFER = 4096


@dataclass(slots=True)
class _Watcher:
    execution_id: int | None
    logs: bool
    send: trio.MemorySendChannel[WatchItem]
    missed: int = 0


@dataclass(slots=True)
class _Live:
    """What a late joiner needs to catch up with one running execution."""

    execution: ExecutionRecord
    counters: Counters = field(default_factory=Counters)
    current_tag: str = ""


class Hub:
    def __init__(self) -> None:
        self._watchers: list[_Watcher] = []
        self._live: dict[int, _Live] = {}
        self._listeners: list[Callable[[WatchItem], None]] = []

    def subscribe(self, listener: Callable[[WatchItem], None]) -> None:
        """Call `listener` with every item, synchronously and losslessly (metrics, webhooks):
        it must not block or raise."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[WatchItem], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def watching(self) -> bool:
        """Whether anyone watches (the store feed reads only then)."""
        return bool(self._watchers)

    def watched(self) -> set[int]:
        """The executions watched one by one."""
        return {w.execution_id for w in self._watchers if w.execution_id is not None}

    def publish(self, item: WatchItem, *, remote: bool = False) -> None:
        self._remember(item)
        for listener in self._listeners if not remote else ():
            listener(item)
        for watcher in self._watchers:
            if watcher.execution_id not in (None, item.execution_id):
                continue
            if item.log is not None and not watcher.logs:
                continue
            self._offer(watcher, item)
            finished = item.execution is not None and not item.execution.status.active
            if finished and watcher.execution_id is not None:
                watcher.send.close()  # watching one execution: its stream ends with it

    @asynccontextmanager
    async def watch(
        self, execution_id: int | None, *, logs: bool
    ) -> AsyncIterator[AsyncIterator[WatchItem]]:
        send, receive = trio.open_memory_channel[WatchItem](_BUFFER)
        watcher = _Watcher(execution_id, logs, send)
        for live in list(self._live.values()):
            if execution_id in (None, live.execution.id):
                self._offer(watcher, _snapshot(live))
        self._watchers.append(watcher)
        try:
            async with receive:
                yield receive
        finally:
            self._watchers.remove(watcher)
            await send.aclose()

    def forget(self, execution_id: int) -> None:
        """Drop what is remembered of a remote execution the feed no longer follows (its end
        may never reach this hub: a late joiner must not take it for live)."""
        self._live.pop(execution_id, None)

    def is_live(self, execution_id: int) -> bool:
        return execution_id in self._live

    def live_counters(self, execution_id: int) -> Counters | None:
        """A copy of the running execution's counters as they are right now."""
        live = self._live.get(execution_id)
        return replace(live.counters) if live else None

    def track(self, execution_id: int, counters: Counters) -> None:
        """Share the engine's own (mutable) counters, so late joiners see them up to date."""
        live = self._live.get(execution_id)
        if live is not None:
            live.counters = counters

    def _remember(self, item: WatchItem) -> None:
        if item.execution is not None:
            if item.execution.status.active:
                live = self._live.setdefault(item.execution_id, _Live(item.execution))
                live.execution = item.execution
            else:
                self._live.pop(item.execution_id, None)
            return
        live_or_none = self._live.get(item.execution_id)
        if live_or_none is None:
            return
        if item.current_tag:
            live_or_none.current_tag = item.current_tag

    def _offer(self, watcher: _Watcher, item: WatchItem) -> None:
        if watcher.missed and item.log is None:
            note = LogEvent("warning", f"watcher too slow: {watcher.missed} events dropped")
            try:
                watcher.send.send_nowait(replace(item, log=note, progress=None, tag=None,
                                                 execution=None))
                watcher.missed = 0
            except trio.WouldBlock:
                pass
        try:
            watcher.send.send_nowait(item)
        except trio.WouldBlock:
            watcher.missed += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass


def _snapshot(live: _Live) -> WatchItem:
    return WatchItem(
        execution_id=live.execution.id,
        task=live.execution.task,
        execution=replace(live.execution, counters=replace(live.counters)),
        current_tag=live.current_tag,
    )
