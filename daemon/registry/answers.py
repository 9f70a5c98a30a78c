"""A registry's error answers become regsync errors, structured, redacted and capped.

Like go-containerregistry's `transport/error.go`, a registry's JSON error body
(`{"errors": [{"code", "message", "detail"}]}`, read up to 64 KiB) is parsed into structured codes
that decide the error type and whether a retry may help. Pure apart from reading the clock for an
HTTP-date Retry-After.

What a registry says reaches users only redacted (our credentials removed), with control
characters escaped, and capped: 64 KiB read, JSON nested at most 64 levels, 20 entries kept
and 3 shown, 64 characters per code, 300 per message, detail or text body.

Status and code -> error (first match wins):

    HTML body (any status)      RemoteServerError  "the registry answered an HTML page ..."
    429 / TOOMANYREQUESTS       RateLimitError     temporary, carries Retry-After; Docker Hub's
                                                   exhausted pull quota is not temporary
    401                         AuthError          credentials refused / required
    403 / DENIED                AuthError          permission
    404 / *_UNKNOWN             NotFoundError
    408, 5xx                    RemoteServerError  temporary, carries Retry-After
    DIGEST_INVALID              DigestMismatchError
    UNSUPPORTED                 UnsupportedError
    anything else               RegistryError      with the registry's own code and message
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from ..base.errors import (
    AuthError,
    DigestMismatchError,
    NotFoundError,
    RateLimitError,
    RegistryError,
    RemoteServerError,
    UnsupportedError,
    redact_url,
)
from ..base.safetext import escape_controls
from ..oci.jsondoc import parse_json
from .ratelimit import parse_ratelimit_remaining

#: error bodies are read up to this many bytes (a misbehaving proxy may send megabytes)
ERROR_BODY_LIMIT = 64 * 1024
_TEXT_LIMIT = 300
_CODE_LIMIT = 64  # distribution's codes are short words: NAME_UNKNOWN, TOOMANYREQUESTS
_ENTRIES_LIMIT = 20  # entries of an error body kept (three are shown)


@dataclass(frozen=True, slots=True)
class RemoteError:
    """One entry of a registry's JSON error body."""

    code: str
    message: str
    detail: str = ""


def parse_error_body(body: bytes) -> tuple[RemoteError, ...]:
    """The entries of a distribution error body; () when it is not one."""
    try:
        document = parse_json(body[:ERROR_BODY_LIMIT])
    except ValueError:  # not JSON, or nested too deep: then it is no distribution error body
        return ()
    entries = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return ()
    return tuple(
        RemoteError(
            code=_clip(str(entry.get("code") or "UNKNOWN").upper())[:_CODE_LIMIT],
            message=_clip(entry.get("message")),
            detail=_clip(entry.get("detail")),
        )
        for entry in entries[:_ENTRIES_LIMIT]
        if isinstance(entry, dict)
    )


def _clip(value: object) -> str:
    if value is None or value == "":
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return escape_controls(" ".join(text[: 4 * _TEXT_LIMIT].split()))[:_TEXT_LIMIT]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP-date); None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def looks_like_html(headers: httpx.Headers, body: bytes) -> bool:
    """Whether an answer is a web page (a proxy's or a login portal's), not a registry's."""
    if "html" in headers.get("content-type", "").lower():
        return True
    start = body[:64].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))


_AUTH_VALUE = re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact_secrets(text: str, request: httpx.Request | None) -> str:
    """Remove what a registry may echo of our credentials from its own words.

    Some registries put the Authorization header, or the password in it, into their error
    bodies; those words reach logs, the store and API replies.
    """
    secrets: list[str] = []
    header = request.headers.get("authorization", "") if request is not None else ""
    scheme, _, credential = header.partition(" ")
    if credential:
        secrets.append(credential)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential).decode("utf-8", "replace")
            except ValueError:
                decoded = ""
            password = decoded.partition(":")[2]
            if len(password) >= 4:  # a very short one would blank out ordinary words
                secrets.append(password)
    for secret in secrets:
        text = text.replace(secret, "***")
    return _AUTH_VALUE.sub(r"\1 ***", text)


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:  # a response built by hand (tests) has no request
        return None


def _summary(errors: tuple[RemoteError, ...], body: bytes) -> str:
    """ "CODE: message (detail)" for the first few entries, else the start of a text body."""
    if not errors:
        text = body[:_TEXT_LIMIT].decode("utf-8", "replace")
        return escape_controls(" ".join(text.split()))[:_TEXT_LIMIT]
    parts = []
    for entry in errors[:3]:
        part = f"{entry.code}: {entry.message}" if entry.message else entry.code
        parts.append(f"{part} ({entry.detail})" if entry.detail else part)
    return "; ".join(parts)


def error_from_response(
    response: httpx.Response,
    registry: str,
    what: str,
    *,
    body: bytes | None = None,
    user: str | None = None,
    repository: str | None = None,
) -> RegistryError:
    """The regsync error for a non-2xx answer to a request about `what` ("manifest a/b:1", ...).

    `body` is the (capped) body already read; by default the response's content if it was read.
    """
    status = response.status_code
    raw = (body if body is not None else _read_content(response))[:ERROR_BODY_LIMIT]
    errors = parse_error_body(raw)
    codes = tuple(entry.code for entry in errors)
    summary = redact_secrets(_summary(errors, raw), _request_of(response))
    said = f"HTTP {status}" + (f" {summary}" if summary else "")
    if looks_like_html(response.headers, raw):
        return RemoteServerError(
            f"{what}: HTTP {status}: the registry answered an HTML page (proxy or login portal?)"
            f" at {_url_of(response)}",
            registry=registry,
            status=status,
            codes=codes,
            temporary=status >= 500,
        )
    if status == 429 or "TOOMANYREQUESTS" in codes:
        return _rate_limited(response, registry, what, said, codes, user)
    if status == 401:
        text = (
            f"registry refused the credentials of user {user!r}"
            if user
            else "authentication required, and no credentials are configured for this registry"
        )
        return AuthError(f"{what}: {text} ({said})", registry=registry, status=status, codes=codes)
    if status == 403 or "DENIED" in codes:
        who = f" for user {user!r}" if user else " (anonymous)"
        return AuthError(
            f"{what}: permission denied{who} ({said})",
            registry=registry,
            status=status,
            codes=codes,
        )
    if status == 404 or any(code.endswith("_UNKNOWN") for code in codes):
        return NotFoundError(
            _not_found_text(registry, what, codes, repository, said),
            registry=registry,
            status=status,
            codes=codes,
        )
    if status >= 500 or status == 408:
        return RemoteServerError(
            f"{what}: registry failed ({said})",
            registry=registry,
            status=status,
            codes=codes,
            temporary=True,
            retry_after=_retry_after(response),
        )
    if "DIGEST_INVALID" in codes:
        return DigestMismatchError(
            f"{what}: registry says the content does not match its digest ({said})",
            registry=registry,
            status=status,
            codes=codes,
        )
    if "UNSUPPORTED" in codes:
        return UnsupportedError(
            f"{what}: registry does not support this ({said})",
            registry=registry,
            status=status,
            codes=codes,
        )
    return RegistryError(
        f"{what}: registry refused the request ({said})",
        registry=registry,
        status=status,
        codes=codes,
    )


def _not_found_text(
    registry: str, what: str, codes: tuple[str, ...], repository: str | None, said: str
) -> str:
    if "NAME_UNKNOWN" in codes and repository:
        return f"repository {repository!r} not found on registry {registry!r}"
    if "MANIFEST_BLOB_UNKNOWN" in codes:
        return f"{what}: the registry lacks a blob the manifest refers to ({said})"
    return f"{what} not found on registry {registry!r}"


def _rate_limited(
    response: httpx.Response,
    registry: str,
    what: str,
    said: str,
    codes: tuple[str, ...],
    user: str | None,
) -> RateLimitError:
    quota = parse_ratelimit_remaining(response.headers)
    if quota is not None and quota[0] == 0:
        error = quota_exhausted(registry, quota[1], user=user)
        error.status, error.codes = response.status_code, codes
        return error
    return RateLimitError(
        f"{what}: too many requests ({said})",
        registry=registry,
        status=response.status_code,
        codes=codes,
        retry_after=_retry_after(response),
    )


def quota_exhausted(registry: str, window: int, *, user: str | None = None) -> RateLimitError:
    """Docker Hub's pull quota is used up: waiting seconds cannot help, so not temporary."""
    advice = "retry later" if user else "retry later or log in"
    shown = f"window {window}s" if window else "window unknown"
    return RateLimitError(
        f"Docker Hub pull quota exhausted ({shown}); {advice}", registry=registry, temporary=False
    )


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


def _read_content(response: httpx.Response) -> bytes:
    try:
        return response.content
    except httpx.ResponseNotRead:
        return b""


def _url_of(response: httpx.Response) -> str:
    try:
        return redact_url(str(response.request.url))
    except RuntimeError:
        return "(unknown URL)"
