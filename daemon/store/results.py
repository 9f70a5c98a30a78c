"""`Repo`'s part about what an execution leaves behind: its tag results and log lines, stored
in batches and read back in pages a reply can carry (a mixin, like `LeaseOps`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from peewee import fn

from ..base.errors import UnknownItemError
from ..engine.events import LogEvent, Outcome, TagResult
from . import models as m
from .models import Execution, LogRow, TagResultRow
from .records import (
    LOGS_PAGE_MAX,
    RESULTS_PAGE_BYTES,
    RESULTS_PAGE_DEFAULT,
    LogsPage,
    ResultsPage,
)

_DONE = (Outcome.COPIED.value, Outcome.SKIPPED.value)
_T = TypeVar("_T")


class ResultOps:
    """Tag results and logs of executions; every method checks the execution exists."""

    def add_results(self, id: int, results: Iterable[TagResult]) -> None:
        """Store tag results; a tag already recorded for this execution is overwritten."""
        self._status(id)
        rows = [m.result_columns(id, r) for r in results]
        if not rows:
            return
        overwrite = [
            TagResultRow.rule, TagResultRow.outcome, TagResultRow.digest,
            TagResultRow.reason, TagResultRow.error_kind,
        ]  # fmt: skip
        for batch in chunks(rows, 200):  # SQLite caps bound variables per statement
            TagResultRow.insert_many(batch).on_conflict(
                conflict_target=[TagResultRow.execution, TagResultRow.repository, TagResultRow.tag], preserve=overwrite
            ).execute()

    def results(self, id: int) -> list[TagResult]:
        """The execution's tag results in the order they were first recorded."""
        self._status(id)
        rows = TagResultRow.select().where(TagResultRow.execution == id).order_by(TagResultRow.id)
        return [m.tag_result(r) for r in rows]

    def results_page(
        self, id: int, *, after: int = 0, limit: int = RESULTS_PAGE_DEFAULT,
        max_bytes: int = RESULTS_PAGE_BYTES,
    ) -> ResultsPage:
        """At most `limit` results recorded after the one `after` names (0: from the first),
        cut shorter when their text passes `max_bytes`; always at least one when any is left."""
        self._status(id)
        where = (TagResultRow.execution == id) & (TagResultRow.id > after)
        rows = TagResultRow.select().where(where).order_by(TagResultRow.id).limit(limit + 1)
        results: list[TagResult] = []
        size, last, more = 0, 0, False
        for row in rows:
            size += 16 + sum(len(text.encode()) for text in (
                row.rule, row.repository, row.tag, row.digest, row.reason, row.error_kind))
            if len(results) == limit or (results and size > max_bytes):
                more = True
                break
            results.append(m.tag_result(row))
            last = row.id
        total = TagResultRow.select().where(TagResultRow.execution == id).count()
        return ResultsPage(tuple(results), last if more else None, total)

    def done_tags(self, id: int) -> set[str]:
        """Tags copied or skipped (a resumed run need not touch them again)."""
        return self._tags(id, TagResultRow.outcome.in_(_DONE))

    def failed_tags(self, id: int) -> set[str]:
        return self._tags(id, TagResultRow.outcome == Outcome.FAILED.value)

    def add_logs(self, id: int, events: Iterable[LogEvent]) -> None:
        """Append log lines; they are numbered 0, 1, 2... per execution in the order given."""
        self._status(id)
        last = LogRow.select(fn.MAX(LogRow.seq)).where(LogRow.execution == id).scalar()
        start = -1 if last is None else int(last)
        rows = [m.log_columns(id, start + 1 + n, e) for n, e in enumerate(events)]
        for batch in chunks(rows, 200):  # SQLite caps bound variables per statement
            LogRow.insert_many(batch).execute()

    def logs(self, id: int, *, offset: int = 0, limit: int | None = None) -> list[LogEvent]:
        """Log lines from the `offset`-th on (0-based), at most `limit` of them."""
        self._status(id)
        select = LogRow.select().where((LogRow.execution == id) & (LogRow.seq >= offset))
        select = select.order_by(LogRow.seq)
        if limit is not None:
            select = select.limit(limit)
        return [m.log_event(r) for r in select]

    def logs_page(
        self, id: int, *, offset: int = 0, limit: int = LOGS_PAGE_MAX,
        max_bytes: int = RESULTS_PAGE_BYTES,
    ) -> LogsPage:
        """`logs`, cut shorter when the text passes `max_bytes` (never empty while lines are
        left), with the execution's line count."""
        lines: list[LogEvent] = []
        size = 0
        for line in self.logs(id, offset=offset, limit=limit):
            size += 24 + len(line.level.encode()) + len(line.message.encode()) + len(
                line.rule.encode())
            if lines and size > max_bytes:
                break
            lines.append(line)
        total = LogRow.select().where(LogRow.execution == id).count()
        return LogsPage(tuple(lines), total)

    def _status(self, id: int) -> str:
        """The execution's status; the cheapest existence check (queries compile slowly)."""
        status = Execution.select(Execution.status).where(Execution.id == id).scalar()
        if status is None:
            raise UnknownItemError(f"no execution with id {id}")
        return str(status)

    def _tags(self, id: int, condition: object) -> set[str]:
        self._status(id)
        where = (TagResultRow.execution == id) & condition
        rows = TagResultRow.select(TagResultRow.repository, TagResultRow.tag).where(where)
        return {m.tag_result_key(r) for r in rows}


def chunks(items: list[_T], size: int) -> list[list[_T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
