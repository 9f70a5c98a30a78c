"""Per-day aggregation of ended executions for the trend charts: pure."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from regsync.daemon.monitor.trends import per_day
from regsync.daemon.store.records import ExecutionStatus as S

TODAY = date(2026, 3, 2)


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC) if day > 0 else datetime(
        2026, 2, 28 + day, hour, tzinfo=UTC)


def test_every_day_of_the_window_oldest_first_with_zeros() -> None:
    days = per_day([], days=30, today=TODAY)
    assert len(days) == 30 and days[0].day == date(2026, 2, 1) and days[-1].day == TODAY
    assert all(not d.counts and d.bytes_copied == 0 for d in days)


def test_counts_by_status_and_bytes_for_the_day_of_the_end() -> None:
    ended = [
        (_at(2, 0), S.SUCCEEDED, 100), (_at(2, 23), S.SUCCEEDED, 50), (_at(2), S.FAILED, 7),
        (_at(1, 23), S.STOPPED, 3), (_at(0), S.INTERRUPTED, 0),  # Feb 28
        (_at(3), S.SUCCEEDED, 999),  # tomorrow: outside
        (datetime(2026, 1, 31, 23, tzinfo=UTC), S.FAILED, 999),  # before the window
        (_at(2), S.RUNNING, 999),  # not ended: ignored
    ]
    days = {d.day: d for d in per_day(ended, days=30, today=TODAY)}
    assert days[TODAY].counts == {S.SUCCEEDED: 2, S.FAILED: 1}
    assert days[TODAY].bytes_copied == 157
    assert days[date(2026, 3, 1)].counts == {S.STOPPED: 1}
    assert days[date(2026, 2, 28)].counts == {S.INTERRUPTED: 1}
    assert sum(d.bytes_copied for d in days.values()) == 160


@pytest.mark.parametrize("days", [0, -1, 367])
def test_the_window_is_bounded(days: int) -> None:
    with pytest.raises(ValueError, match="days must be 1-366"):
        per_day([], days=days, today=TODAY)
