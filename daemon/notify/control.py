"""The service layer of webhooks: what the NotificationService servicer calls, in trio.

A mixin of `service.Control` (it needs only the store), kept here so the webhook feature stays in
one package; `NotificationPlane` is its contract, checked at run time by the API server.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..settings import NotificationSettings
from ..store import notifications as store
from ..store.db import Database
from ..store.records import NotificationRecord


@runtime_checkable
class NotificationPlane(Protocol):
    async def create_notification(self, settings: NotificationSettings) -> NotificationRecord: ...
    async def list_notifications(self) -> list[NotificationRecord]: ...
    async def get_notification(self, name: str) -> NotificationRecord: ...
    async def update_notification(
        self, settings: NotificationSettings, *, keep_secret: bool
    ) -> NotificationRecord: ...
    async def delete_notification(self, name: str) -> None: ...


class NotificationControl:
    """Implements `NotificationPlane` on `self._db` (set by the class it is mixed into)."""

    _db: Database

    async def create_notification(self, settings: NotificationSettings) -> NotificationRecord:
        return await self._db.run(lambda repo: store.create_notification(settings))

    async def list_notifications(self) -> list[NotificationRecord]:
        return await self._db.run(lambda repo: store.list_notifications())

    async def get_notification(self, name: str) -> NotificationRecord:
        return await self._db.run(lambda repo: store.get_notification(name))

    async def update_notification(
        self, settings: NotificationSettings, *, keep_secret: bool
    ) -> NotificationRecord:
        return await self._db.run(
            lambda repo: store.update_notification(settings, keep_secret=keep_secret))

    async def delete_notification(self, name: str) -> None:
        await self._db.run(lambda repo: store.delete_notification(name))
