"""Executions other daemons run, brought into this daemon's hub from the shared store.

The daemon that runs an execution writes its results, logs and counters to the store every half
second (executor.py); this feed reads what is new every FEED_EVERY seconds, while anyone watches,
and publishes it as `remote` hub items. So Watch, the panel's live pages and a late joiner's
snapshot work through any daemon's API for any execution. An execution first seen mid-run
starts from what the store holds then (its earlier lines are GetLogs' to page, as for a local
run a watcher joins late); once it ends its final record closes the watches of it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import partial

import trio

from ..base.errors import StoreError, UnknownItemError
from ..store.db import Database
from ..store.records import ExecutionRecord
from ..store.repo import Repo
from .executor import Executor
from .hub import Hub
from .watch import WatchItem

FEED_EVERY = 0.5  # seconds: the same as the executor's flushes


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far the feed has read one execution."""

    logs: int  # log lines published (the next one's seq)
    result: int  # the last published result's number
    record: ExecutionRecord


def read_news(
    repo: Repo, local: Collection[int], seen: dict[int, Cursor], watched: Collection[int] = ()
) -> tuple[list[WatchItem], dict[int, Cursor]]:
    """What happened since `seen` to the active executions not run here, and to the `watched`
    ones (one that ended before the feed saw it still ends its watches), in one store
    operation: the items to publish, and the cursors of the ones still active."""
    active = {r.id: r for r in repo.running() if r.id not in local}
    items: list[WatchItem] = []
    cursors: dict[int, Cursor] = {}
    for id in sorted((set(active) | set(seen) | set(watched)) - set(local)):
        record = active.get(id) or _record(repo, id)
        if record is None:  # deleted meanwhile (with its task)
            continue
        cursor = seen.get(id)
        if cursor is None:
            cursor = Cursor(repo.log_count(id), repo.last_result(id), record)
            items.append(WatchItem(id, record.task, execution=record))
        else:
            for number, result in repo.results_since(id, cursor.result):
                items.append(WatchItem(id, record.task, tag=result))
                cursor = replace(cursor, result=number)
            lines = repo.logs(id, offset=cursor.logs)
            items += (WatchItem(id, record.task, log=line) for line in lines)
            if record.status != cursor.record.status or record.daemon != cursor.record.daemon:
                items.append(WatchItem(id, record.task, execution=record))
            elif record.counters != cursor.record.counters:
                items.append(WatchItem(id, record.task, progress=record.counters))
            cursor = replace(cursor, logs=cursor.logs + len(lines), record=record)
        if record.status.active:
            cursors[id] = cursor
    return items, cursors


def _record(repo: Repo, id: int) -> ExecutionRecord | None:
    try:
        return repo.get_execution(id)
    except UnknownItemError:
        return None


class StoreFeed:
    def __init__(self, db: Database, hub: Hub, executor: Executor) -> None:
        self._db, self._hub, self._executor = db, hub, executor
        self._seen: dict[int, Cursor] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(FEED_EVERY)
            if not self._hub.watching():
                for id in self._seen:  # a new watcher starts from the store's state then
                    self._hub.forget(id)
                self._seen = {}
                continue
            read = partial(read_news, local=self._executor.running_ids(), seen=self._seen,
                           watched=self._hub.watched())
            try:
                items, self._seen = await self._db.run(read)
            except StoreError:
                continue  # the coordinator says so in the log; try again next time
            local = self._executor.running_ids()  # claimed here meanwhile: ours to tell now
            for item in items:
                if item.execution_id in local:
                    continue
                self._hub.publish(item, remote=True)
                counters = item.progress or (item.execution.counters if item.execution else None)
                if counters is not None:  # a late joiner's snapshot carries them
                    self._hub.track(item.execution_id, replace(counters))
