"""The service layer of the trend charts: a mixin of `service.Control` (it needs the store)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from ..base.errors import ConfigError
from ..store.db import Database
from ..store.history import ended_since
from .trends import MAX_DAYS, Day, per_day, window_start


@runtime_checkable
class TrendPlane(Protocol):
    async def daily_trends(self, days: int) -> list[Day]: ...


class TrendControl:
    _db: Database

    async def daily_trends(self, days: int) -> list[Day]:
        if not 1 <= days <= MAX_DAYS:
            raise ConfigError(f"days: must be 1-{MAX_DAYS}, got {days}")
        today = datetime.now(UTC).date()
        since = datetime.combine(window_start(today, days), datetime.min.time(), UTC)
        ended = await self._db.run(lambda repo: ended_since(since))
        return per_day(ended, days=days, today=today)
