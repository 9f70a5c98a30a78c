"""The `notifications:` section (webhooks), checked like every other section; the values are
`settings.NotificationSettings`, shared with the API's validation."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..settings import NOTIFICATION_EVENTS, NOTIFICATION_FORMATS, NotificationSettings
from .fields import LIST_MAX, REGISTRY_NAME_MAX, read_mapping, read_text, read_texts
from .problems import At, Report, kind, one_of, shortened
from .registries import REGISTRY_NAME, valid_host

_NOTIFICATION_KEYS = ("name", "url", "events", "tasks", "secret", "format")


def read_notifications(value: object, report: Report) -> tuple[NotificationSettings, ...]:
    if value is None:
        return ()
    at = At(report, "notifications")
    if not isinstance(value, list):
        at.problem(f"expected a list of webhooks, got {kind(value)}")
        return ()
    if len(value) > LIST_MAX:
        at.problem(f"has {len(value)} entries; the limit is {LIST_MAX}")
        return ()
    hooks: list[NotificationSettings] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(value):
        hook = _notification(item, At(report, f"notifications[{position}]"))
        if hook is None:
            continue
        if hook.name in seen:
            At(report, f"notifications[{position}]").key("name").problem(
                f"duplicate webhook name (also notifications[{seen[hook.name]}])")
            continue
        seen[hook.name] = position
        hooks.append(hook)
    return tuple(hooks)


def _notification(value: object, at: At) -> NotificationSettings | None:
    fields = read_mapping(value, at, _NOTIFICATION_KEYS)
    if fields is None:
        return None
    before = at.count()
    name = read_text(fields, "name", at, required=True)
    if name is not None and (not REGISTRY_NAME.fullmatch(name) or len(name) > REGISTRY_NAME_MAX):
        at.key("name").problem(
            f"invalid name {shortened(name)!r}; use 1-{REGISTRY_NAME_MAX} of A-Z a-z 0-9 - _ .")
    url = _webhook_url(fields, at)
    events = read_texts(fields, "events", at)
    if "events" not in fields:
        at.key("events").problem(f"is required: one or more of {', '.join(NOTIFICATION_EVENTS)}")
    for position, event in enumerate(events):
        if event not in NOTIFICATION_EVENTS:
            at.key("events").index(position).problem(
                f"unknown event {shortened(event)!r}"
                + one_of(event, list(NOTIFICATION_EVENTS), "events"))
    tasks = read_texts(fields, "tasks", at)
    secret = read_text(fields, "secret", at) or None
    format_ = read_text(fields, "format", at) or "json"
    if format_ not in NOTIFICATION_FORMATS:
        at.key("format").problem(
            f"unknown format {shortened(format_)!r}; known: {', '.join(NOTIFICATION_FORMATS)}")
    if at.count() != before or name is None or url is None:
        return None
    return NotificationSettings(name, url, tuple(dict.fromkeys(events)), tasks, secret, format_)


def _webhook_url(fields: dict[str, object], at: At) -> str | None:
    text = read_text(fields, "url", at, required=True)
    if text is None:
        return None
    here = at.key("url")
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        here.problem(f"invalid URL: {exc}")
        return None
    if parts.username is not None or parts.password is not None:
        here.problem("must not contain credentials; use secret for a signature")  # not echoed
    elif parts.scheme not in ("http", "https"):
        here.problem(f"must start with https:// or http://, got {parts.scheme or 'no'} scheme")
    elif not valid_host(parts.hostname or ""):
        here.problem("has no valid host name")
    elif parts.fragment:
        here.problem("must not have a fragment")
    else:
        return text.strip()
    return None
