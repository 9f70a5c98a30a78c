"""The `notifications:` section of the YAML (webhooks), checked like every other section.

Kept apart from `config` (which it builds on: the same problem reporting, text and list
checks, host validation) so the webhook feature stays in its own files; the parsed values are
`config.NotificationSettings`, shared with the API's validation.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .config import (
    _REGISTRY_NAME,
    LIST_MAX,
    NOTIFICATION_EVENTS,
    NOTIFICATION_FORMATS,
    REGISTRY_NAME_MAX,
    NotificationSettings,
    _At,
    _fields,
    _kind,
    _one_of,
    _Report,
    _shortened,
    _text,
    _texts,
    _valid_host,
)

_NOTIFICATION_KEYS = ("name", "url", "events", "tasks", "secret", "format")


def parse_notifications(value: object, report: _Report) -> tuple[NotificationSettings, ...]:
    if value is None:
        return ()
    at = _At(report, "notifications")
    if not isinstance(value, list):
        at.problem(f"expected a list of webhooks, got {_kind(value)}")
        return ()
    if len(value) > LIST_MAX:
        at.problem(f"has {len(value)} entries; the limit is {LIST_MAX}")
        return ()
    hooks: list[NotificationSettings] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(value):
        hook = _notification(item, _At(report, f"notifications[{position}]"))
        if hook is None:
            continue
        if hook.name in seen:
            _At(report, f"notifications[{position}]").key("name").problem(
                f"duplicate webhook name (also notifications[{seen[hook.name]}])")
            continue
        seen[hook.name] = position
        hooks.append(hook)
    return tuple(hooks)


def _notification(value: object, at: _At) -> NotificationSettings | None:
    fields = _fields(value, at, _NOTIFICATION_KEYS)
    if fields is None:
        return None
    before = at.count()
    name = _text(fields, "name", at, required=True)
    if name is not None and (not _REGISTRY_NAME.fullmatch(name) or len(name) > REGISTRY_NAME_MAX):
        at.key("name").problem(
            f"invalid name {_shortened(name)!r}; use 1-{REGISTRY_NAME_MAX} of A-Z a-z 0-9 - _ .")
    url = _webhook_url(fields, at)
    events = _texts(fields, "events", at)
    if "events" not in fields:
        at.key("events").problem(f"is required: one or more of {', '.join(NOTIFICATION_EVENTS)}")
    for position, event in enumerate(events):
        if event not in NOTIFICATION_EVENTS:
            at.key("events").index(position).problem(
                f"unknown event {_shortened(event)!r}"
                + _one_of(event, list(NOTIFICATION_EVENTS), "events"))
    tasks = _texts(fields, "tasks", at)
    secret = _text(fields, "secret", at) or None
    format_ = _text(fields, "format", at) or "json"
    if format_ not in NOTIFICATION_FORMATS:
        at.key("format").problem(
            f"unknown format {_shortened(format_)!r}; known: {', '.join(NOTIFICATION_FORMATS)}")
    if at.count() != before or name is None or url is None:
        return None
    return NotificationSettings(name, url, tuple(dict.fromkeys(events)), tasks, secret, format_)


def _webhook_url(fields: dict[str, object], at: _At) -> str | None:
    text = _text(fields, "url", at, required=True)
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
    elif not _valid_host(parts.hostname or ""):
        here.problem("has no valid host name")
    elif parts.fragment:
        here.problem("must not have a fragment")
    else:
        return text.strip()
    return None
