"""A glob execution's scope in the store: the repositories it matched, and the difference from
the last execution of its task that walked the whole catalog.

The engine hands repositories over as the catalog pages come, and the executor writes them here
with the tag results (`add_repositories`); once the walk has ended (`close_scope`) the diff is
two set operations in SQL, so neither scope is ever held in memory. A walk that broke off
closes nothing: an execution whose catalog failed half-way must not report the rest removed, and
the next one is compared with the last complete scope instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Execution, ExecutionRepositoryRow
from .records import SCOPE_CHANGES_MAX, ScopeChanges, ScopeCounts

NEW = "new"
REMOVED = "removed"

_Row = ExecutionRepositoryRow


class ScopeOps:
    """The scope's operations, mixed into Repo (run on the DB thread, in its transaction)."""

    def add_repositories(self, id: int, repositories: Iterable[str]) -> None:
        """Record repositories execution `id` matched (a name recorded already is kept once)."""
        rows = [{"execution": id, "repository": name} for name in repositories]
        for start in range(0, len(rows), 300):  # SQLite caps bound variables per statement
            _Row.insert_many(rows[start:start + 300]).on_conflict_ignore().execute()

    def close_scope(self, id: int) -> ScopeCounts:
        """The walk of execution `id` has ended: mark its new repositories, record the removed
        ones, and count them (against the task's last execution with a whole scope; with none,
        every repository is new)."""
        task = Execution.select(Execution.task).where(Execution.id == id)
        previous = (Execution.select(Execution.id)
                    .where((Execution.task == task) & (Execution.id < id)
                           & Execution.repositories.is_null(False))
                    .order_by(Execution.id.desc()).limit(1).scalar())
        ours = _Row.select(_Row.repository).where(_Row.execution == id)
        if previous is None:
            _Row.update(change=NEW).where(_Row.execution == id).execute()
        else:
            theirs = _Row.select(_Row.repository).where(
                (_Row.execution == previous) & (_Row.change != REMOVED))
            _Row.update(change=NEW).where(
                (_Row.execution == id) & _Row.repository.not_in(theirs)).execute()
            gone = theirs.where(_Row.repository.not_in(ours))
            _Row.insert_from(gone.select(id, _Row.repository, REMOVED),
                             [_Row.execution, _Row.repository, _Row.change]).execute()
        counts = ScopeCounts(
            matched=_Row.select().where((_Row.execution == id) & (_Row.change != REMOVED)).count(),
            new=_Row.select().where((_Row.execution == id) & (_Row.change == NEW)).count(),
            removed=_Row.select().where((_Row.execution == id) & (_Row.change == REMOVED)).count(),
        )
        Execution.update(repositories=counts.matched, repositories_new=counts.new,
                         repositories_removed=counts.removed).where(Execution.id == id).execute()
        return counts

    def scope_changes(self, id: int, *, most: int = SCOPE_CHANGES_MAX) -> ScopeChanges:
        """The first `most` new and removed repositories of execution `id`, by name."""

        def names(change: str) -> tuple[str, ...]:
            rows = (_Row.select(_Row.repository)
                    .where((_Row.execution == id) & (_Row.change == change))
                    .order_by(_Row.repository).limit(most))
            return tuple(row.repository for row in rows)

        return ScopeChanges(new=names(NEW), removed=names(REMOVED))
