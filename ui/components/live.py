"""Keep a page current from the Watch stream, and survive daemon restarts.

Events only mark the page stale; a timer refreshes it at most every `interval` seconds, so a
burst of progress events costs one reload, not hundreds. When the stream fails the tab is told
once, the daemon is probed with backoff (the client rebuilds its channel meanwhile), and on
recovery the page reloads and the stream is reopened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nicegui import background_tasks, ui
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from ..client import DaemonError
from ..session import Session, go_login

BACKOFF = (0.5, 1.0, 2.0, 3.0)  # seconds between reconnection probes


class Live:
    """Follow Watch for the current page; `refresh` reloads the page's data."""

    def __init__(self, session: Session, refresh: Callable[[], Awaitable[None]], *,
                 execution_id: int = 0, logs: bool = False,
                 on_event: Callable[[pb.WatchEvent], None] | None = None,
                 interval: float = 0.5) -> None:
        self.session = session
        self.refresh = refresh
        self.execution_id = execution_id
        self.logs = logs
        self.on_event = on_event
        self.stale = False
        self.connected = True
        self.page = ui.context.client
        ui.timer(interval, self._tick)
        task = background_tasks.create(self._follow(), name="regsync-watch")
        self.page.on_delete(task.cancel)

    async def _tick(self) -> None:
        if self.stale:
            self.stale = False
            await self.refresh()

    async def _follow(self) -> None:
        failures = 0
        while not self.page.is_deleted and not self.session.api.client.closed:
            try:
                if failures:
                    await self.session.api.stats()  # probe: is the daemon back?
                    self._recovered()
                    failures = 0
                async for event in self.session.api.watch(execution_id=self.execution_id,
                                                          logs=self.logs):
                    self._handle(event)
                failures = max(failures, 1)  # the stream ended: the daemon is going away
            except DaemonError as error:
                if error.needs_login:
                    with self.page:
                        go_login(self.session.here)
                    return
                self._lost(error)
                failures += 1
            await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])

    def _handle(self, event: pb.WatchEvent) -> None:
        if self.on_event is not None:
            with self.page:
                self.on_event(event)
        self.stale = True

    def _lost(self, error: DaemonError) -> None:
        if self.connected and not self.page.is_deleted:
            self.connected = False
            with self.page:
                ui.notify(f"Live updates paused. {error.message}", type="warning",
                          close_button=True)

    def _recovered(self) -> None:
        self.stale = True
        if not self.connected and not self.page.is_deleted:
            self.connected = True
            with self.page:
                ui.notify("Reconnected to regsyncd.", type="positive")
