"""The NotificationService: webhook specs in, records out, as thin as the other servicers.

Specs are validated by `config.validate_document` like a YAML file's `notifications:` entry
(one dict-level validation, no YAML text), with every string literal; the secret never goes through the parser (validation
sees a placeholder) and never comes back: replies say `secret_set`. The URL comes back as its
origin only, since a chat service's webhook URL is a credential in itself.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any
from urllib.parse import urlsplit

from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

from ..base.errors import ConfigError
from ..notify.control import NotificationPlane
from ..settings import NotificationSettings
from ..store.records import NotificationRecord
from . import inbound, outbound
from .bridge import TrioPortal
from .status import reported_as_status

Context = Any
_PLACEHOLDER_SECRET = "placeholder"


def notification_settings(
    spec: pb.NotificationSpec, *, update: bool = False
) -> tuple[NotificationSettings, bool]:
    """The validated settings of `spec`, and whether to keep the stored secret.

    Raises:
        ConfigError: naming the field, e.g. "notification.events[0]: unknown event".
    """
    if not spec.name:
        raise ConfigError("notification.name: is required")
    keep = update and not spec.HasField("secret")
    secret = spec.secret if spec.HasField("secret") else ""
    literal = inbound.literal
    fields: dict[str, Any] = {
        "name": literal(spec.name), "url": literal(spec.url) or None,
        "events": [literal(e) for e in spec.events], "tasks": [literal(t) for t in spec.tasks],
        "secret": _PLACEHOLDER_SECRET if secret else None, "format": literal(spec.format) or None,
    }
    config = inbound.validated({"notifications": [fields]}, {"notifications[0]: ": "notification."})
    return dataclasses.replace(config.notifications[0], secret=secret or None), keep


def shown_url(url: str) -> str:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return origin + ("/..." if parts.path not in ("", "/") or parts.query else "")


def notification(record: NotificationRecord) -> pb.Notification:
    s = record.settings
    reply = pb.Notification(name=s.name, url=shown_url(s.url), events=s.events, tasks=s.tasks,
                            secret_set=record.secret_set, format=s.format)
    if record.last is not None:
        last = record.last
        reply.last_delivery.CopyFrom(pb.Delivery(
            event=last.event, time=outbound.timestamp(last.time), ok=last.ok, code=last.code,
            error=last.error, attempts=last.attempts))
    return reply


class NotificationServicer(rpc.NotificationServiceServicer):
    def __init__(self, portal: TrioPortal, plane: NotificationPlane) -> None:
        self.portal = portal
        self.plane = plane

    async def CreateNotification(self, request: pb.NotificationSpec,
                                 context: Context) -> pb.Notification:
        async with reported_as_status(context, "CreateNotification"):
            settings, _ = notification_settings(request)
            return notification(await self.portal.call(self.plane.create_notification, settings))

    async def ListNotifications(self, request: pb.ListNotificationsRequest,
                                context: Context) -> pb.ListNotificationsResponse:
        async with reported_as_status(context, "ListNotifications"):
            records = await self.portal.call(self.plane.list_notifications)
            return pb.ListNotificationsResponse(notifications=[notification(r) for r in records])

    async def GetNotification(self, request: pb.NameRequest, context: Context) -> pb.Notification:
        async with reported_as_status(context, "GetNotification"):
            return notification(await self.portal.call(self.plane.get_notification, request.name))

    async def UpdateNotification(self, request: pb.NotificationSpec,
                                 context: Context) -> pb.Notification:
        async with reported_as_status(context, "UpdateNotification"):
            settings, keep = notification_settings(request, update=True)
            call = functools.partial(self.plane.update_notification, settings, keep_secret=keep)
            return notification(await self.portal.call(call))

    async def DeleteNotification(self, request: pb.NameRequest,
                                 context: Context) -> pb.DeleteResponse:
        async with reported_as_status(context, "DeleteNotification"):
            await self.portal.call(self.plane.delete_notification, request.name)
            return pb.DeleteResponse()


def add_to_server(server: Any, portal: TrioPortal, plane: object) -> bool:
    """Serve the NotificationService when the control plane implements it."""
    if not isinstance(plane, NotificationPlane):
        return False
    rpc.add_NotificationServiceServicer_to_server(NotificationServicer(portal, plane), server)
    return True
