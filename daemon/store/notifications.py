"""Webhooks in the store: plain functions run on the DB thread (`db.run(lambda repo: f(...))`),
like `Repo`'s methods. The secret is stored as given and only ever read back by the delivery."""

from __future__ import annotations

import json

from ..base.errors import DuplicateItemError, UnknownItemError
from ..settings import NotificationSettings
from .models import NotificationRow, from_epoch, to_epoch
from .records import DeliveryResult, NotificationRecord


def list_notifications() -> list[NotificationRecord]:
    return [_record(row) for row in NotificationRow.select().order_by(NotificationRow.name)]


def get_notification(name: str) -> NotificationRecord:
    return _record(_row(name))


def create_notification(settings: NotificationSettings) -> NotificationRecord:
    if NotificationRow.get_or_none(NotificationRow.name == settings.name) is not None:
        raise DuplicateItemError(f"a webhook named {settings.name!r} exists already")
    NotificationRow.create(**_columns(settings))
    return get_notification(settings.name)


def update_notification(settings: NotificationSettings, *, keep_secret: bool) -> NotificationRecord:
    """Replace a webhook's settings; `keep_secret` keeps the stored secret when none is given."""
    row = _row(settings.name)
    columns = _columns(settings)
    if keep_secret and settings.secret is None:
        columns.pop("secret")
    NotificationRow.update(**columns).where(NotificationRow.id == row.id).execute()
    return get_notification(settings.name)


def upsert_notification(settings: NotificationSettings) -> bool:
    """From a config file: create or replace (secret included); True when created."""
    if NotificationRow.get_or_none(NotificationRow.name == settings.name) is None:
        NotificationRow.create(**_columns(settings))
        return True
    update_notification(settings, keep_secret=False)
    return False


def delete_notification(name: str) -> None:
    NotificationRow.delete().where(NotificationRow.id == _row(name).id).execute()


def record_delivery(name: str, result: DeliveryResult) -> None:
    """The last delivery's result; a webhook deleted meanwhile is simply not updated."""
    NotificationRow.update(
        last_event=result.event, last_time=to_epoch(result.time), last_ok=result.ok,
        last_code=result.code, last_error=result.error, last_attempts=result.attempts,
    ).where(NotificationRow.name == name).execute()


def _row(name: str) -> NotificationRow:
    row = NotificationRow.get_or_none(NotificationRow.name == name)
    if row is None:
        raise UnknownItemError(f"no webhook named {name!r}")
    return row


def _columns(settings: NotificationSettings) -> dict[str, object]:
    return {
        "name": settings.name, "url": settings.url, "events": json.dumps(list(settings.events)),
        "tasks": json.dumps(list(settings.tasks)), "secret": settings.secret,
        "format": settings.format,
    }


def _record(row: NotificationRow) -> NotificationRecord:
    settings = NotificationSettings(
        name=row.name, url=row.url, events=tuple(json.loads(row.events)),
        tasks=tuple(json.loads(row.tasks)), secret=row.secret, format=row.format,
    )
    last = None
    if row.last_time is not None:
        last = DeliveryResult(row.last_event, from_epoch(row.last_time), bool(row.last_ok),
                              row.last_code, row.last_error, row.last_attempts)
    return NotificationRecord(settings, last)
