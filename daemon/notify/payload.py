"""What a webhook receives: the JSON body (or Slack's), and its signature. Pure.

JSON (`format: json`):

    {"event": "execution.failed", "task": "nginx", "sent_at": ISO-8601,
     "execution": {"id", "status", "trigger", "started", "finished", "duration_seconds",
                   "counters": {tags_total, tags_copied, ...}, "error",
                   "failed_tags": [{"tag", "reason", "error_kind"}, ...]  (the first MAX_FAILED)},
     "link": "<panel URL of the execution>" or null}

`task.stale` carries {"last_success": ISO-8601 or null, "period_seconds"} instead of
"execution". `format: slack` is an incoming-webhook body: {"text": one summary line}.
With a `secret`, `X-Regsync-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import quote

from ..engine.events import TagResult
from ..store.records import ExecutionRecord
from .rules import Stale

SIGNATURE_HEADER = "X-Regsync-Signature"
MAX_FAILED = 10  # failed tags named in a payload
_TEXT_MAX = 500  # characters of a reason or error in a payload


@dataclass(frozen=True, slots=True)
class Notice:
    """One event to tell: an execution's end (with its first failed tags) or a stale task."""

    event: str
    task: str
    execution: ExecutionRecord | None = None
    failed: tuple[TagResult, ...] = ()
    stale: Stale | None = None


def link(panel_url: str | None, notice: Notice) -> str | None:
    if not panel_url:
        return None
    base = panel_url.rstrip("/")
    if notice.execution is not None:
        return f"{base}/executions/{notice.execution.id}"
    return f"{base}/executions?task={quote(notice.task, safe='')}"


def json_body(notice: Notice, *, panel_url: str | None, now: datetime) -> dict[str, object]:
    body: dict[str, object] = {"event": notice.event, "task": notice.task,
                               "sent_at": now.isoformat()}
    record = notice.execution
    if record is not None:
        duration = (record.finished - record.started).total_seconds() if record.finished else None
        body["execution"] = {
            "id": record.id, "status": record.status.value, "trigger": record.trigger.value,
            "started": record.started.isoformat(),
            "finished": record.finished.isoformat() if record.finished else None,
            "duration_seconds": duration, "counters": asdict(record.counters),
            "error": _clip(record.error),
            "failed_tags": [{"tag": r.tag, "reason": _clip(r.reason), "error_kind": r.error_kind}
                            for r in notice.failed[:MAX_FAILED]],
        }
    if notice.stale is not None:
        last = notice.stale.last_success
        body["last_success"] = last.isoformat() if last else None
        body["period_seconds"] = notice.stale.period.total_seconds()
    body["link"] = link(panel_url, notice)
    return body


def slack_body(notice: Notice, *, panel_url: str | None) -> dict[str, object]:
    record = notice.execution
    if record is not None:
        c = record.counters
        text = (f"regsync: task {notice.task} execution {record.id} {record.status.value}: "
                f"{c.tags_copied} copied, {c.tags_skipped} unchanged, {c.tags_failed} failed")
        if c.tags_deleted:
            text += f", {c.tags_deleted} target tags pruned"
        if notice.failed:
            first = notice.failed[0]
            text += f"; first failure {first.tag}: {_clip(first.reason, 200)}"
    else:
        text = f"regsync: task {notice.task} has not succeeded for over twice its schedule period"
    url = link(panel_url, notice)
    text = _slack_escape(text)
    if url:
        text += f" <{url}|open>"
    return {"text": text}


def encode(notice: Notice, *, format: str, panel_url: str | None, now: datetime) -> bytes:
    body = (slack_body(notice, panel_url=panel_url) if format == "slack"
            else json_body(notice, panel_url=panel_url, now=now))
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _clip(text: str, limit: int = _TEXT_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _slack_escape(text: str) -> str:
    """Slack reads <...> as links and mentions: a tag's reason must not ping anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
