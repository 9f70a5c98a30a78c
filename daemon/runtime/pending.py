"""One execution's events on their way to the store: kept as they come, written in batches.

The executor hands every engine event to `take` and calls `flush` every half second (and at
the end): one DB hop per flush, not per event. A flush the store refuses leaves everything
pending, in order, so nothing is lost and the next flush (or the owed end) writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..base.errors import StoreError
from ..engine.events import (
    Counters,
    Event,
    LogEvent,
    RepositoriesListed,
    RepositoryMatched,
    TagFinished,
    TagResult,
    TagStarted,
)
from ..store.db import Database
from ..store.repo import Repo


@dataclass(slots=True)
class Pending:
    """Events of one execution not yet written to the store."""

    results: list[TagResult] = field(default_factory=list)
    logs: list[LogEvent] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)  # a glob's, as its catalog is walked
    scope_listed: bool = False  # the walk ended: compare the scope with the last one
    current_tag: str = ""
    dirty: bool = False

    def take(self, event: Event) -> None:
        """Keep what `event` adds to the execution's record."""
        if isinstance(event, TagFinished):
            self.results.append(event.result)
        elif isinstance(event, LogEvent):
            self.logs.append(event)
        elif isinstance(event, TagStarted):
            self.current_tag = event.tag
        elif isinstance(event, RepositoryMatched):
            self.repositories.append(event.repository)
        elif isinstance(event, RepositoriesListed):
            self.scope_listed = True
        self.dirty = True

    async def flush(self, db: Database, execution_id: int, counters: Counters) -> None:
        """Write pending results and logs. Raises: StoreError, and then they stay pending."""
        results, logs, repositories = self.results, self.logs, self.repositories
        listed, self.scope_listed = self.scope_listed, False
        self.results, self.logs, self.repositories, self.dirty = [], [], [], False
        snapshot = replace(counters)

        def write(repo: Repo) -> None:
            if repositories:  # before the results and the close: the scope is whole by then
                repo.add_repositories(execution_id, repositories)
            if listed:
                repo.close_scope(execution_id)
            if results:
                repo.add_results(execution_id, results)
            if logs:
                repo.add_logs(execution_id, logs)
            repo.update_counters(execution_id, snapshot)

        try:
            await db.run(write)
        except StoreError:  # one transaction: none of it was written; events since come after
            self.results[:0], self.logs[:0] = results, logs
            self.repositories[:0] = repositories
            self.scope_listed, self.dirty = self.scope_listed or listed, True
            raise
