"""One registry's requests: QPS token, scopes, counters, retries, timeouts, error mapping.

A `Call` states one registry operation (method, URL, counter key, scopes, body limit); the
`Session` sends it so the rules hold for every request regsync makes: the QPS bucket is taken,
Docker Hub's pull quota is watched, foreign exceptions are mapped at the boundary
(registry/boundary.py), non-2xx answers become regsync errors (registry/answers.py), and only
temporary failures of calls whose body can be replayed are retried (registry/retry.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import trio

from ..base.errors import NetworkError, RegsyncError
from . import observe
from .answers import ERROR_BODY_LIMIT, error_from_response, quota_exhausted
from .auth import SCOPES_EXTENSION
from .boundary import map_exceptions
from .ratelimit import HubQuota, TokenBucket
from .retry import RetryPolicy, retrying

_log = logging.getLogger(__name__)


def pull(repository: str) -> tuple[str, ...]:
    """The token scope to read `repository`."""
    return (f"repository:{repository}:pull",)


def push(repository: str) -> tuple[str, ...]:
    """The token scope to write `repository` (reading it too, as distribution wants)."""
    return (f"repository:{repository}:pull,push",)

@dataclass(frozen=True, slots=True)
class Call:
    """One request the client wants answered: what, where, with which token scopes."""

    method: str
    url: str  # relative to the registry URL ("/v2/..."), or absolute (an upload Location)
    key: str  # request counter key, e.g. "manifest.head"
    what: str  # for error messages: "manifest library/alpine:3.19"
    scopes: tuple[str, ...] = ()
    repository: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    content: bytes | None = None
    follow_redirects: bool = False
    body_limit: int = ERROR_BODY_LIMIT
    metered: bool = False  # counts against Docker Hub's pull quota (manifest GETs)


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer with its body read (up to the call's `body_limit` + 1 bytes)."""

    status: int
    headers: httpx.Headers
    body: bytes
    links: dict[str, dict[str, str]]

    def header(self, name: str) -> str | None:
        value: str | None = self.headers.get(name)
        return value


class Session:
    """Sends one registry's Calls: QPS token, scopes, counters, retries, timeouts, error mapping.

    Every request regsync makes to a registry passes `_open`, so the rules hold everywhere:
    non-2xx answers become regsync errors, Docker Hub's quota headers are watched, and only
    temporary failures of calls whose body can be replayed are retried.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        registry: str,
        host: str,
        user: str | None,
        retry: RetryPolicy,
        timeout: float,
        bucket: TokenBucket,
        counts: Counter[str],
    ) -> None:
        self.http = http
        self.base_url = base_url  # joined here: httpx's join of a relative URL parses twice
        self.registry = registry
        self.host = host
        self.user = user
        self.retry = retry
        self.timeout = timeout
        self.bucket = bucket
        self.counts = counts
        self.quota = HubQuota()

    async def send(self, call: Call) -> Reply:
        """The answer to `call`, body read; retried, each attempt bounded by the timeout."""
        return await retrying(
            self.retry, lambda: self._attempt(call), describe=call.what, on_retry=self._retried
        )

    async def open_stream(self, call: Call) -> httpx.Response:
        """A 2xx response with the body still unread (the caller must `aclose` it).

        Getting the answer is retried; reading the body is not (the engine retries a whole
        transfer), and it is bounded by httpx's read timeout, not by a total deadline.
        """

        async def attempt() -> httpx.Response:
            with self._deadline(call):
                return await self._open(call, None)

        return await retrying(self.retry, attempt, describe=call.what, on_retry=self._retried)

    async def send_streaming(self, call: Call, content: AsyncIterable[bytes]) -> Reply:
        """Send a body from an iterator: once, no retry (it cannot be replayed), no deadline."""
        response = await self._open(call, content)
        try:
            body = await self._read(response, call.body_limit + 1, call.what)
        finally:
            await response.aclose()
        return _reply(response, body)

    async def send_once(self, call: Call) -> Reply:
        """One attempt, bounded by the timeout (for best-effort calls such as cleanups)."""
        return await self._attempt(call)

    async def _attempt(self, call: Call) -> Reply:
        with self._deadline(call):
            response = await self._open(call, None)
            try:
                body = await self._read(response, call.body_limit + 1, call.what)
            finally:
                await response.aclose()
        return _reply(response, body)

    @contextmanager
    def _deadline(self, call: Call) -> Iterator[None]:
        try:
            with trio.fail_after(self.timeout):
                yield
        except trio.TooSlowError:
            raise NetworkError(
                f"{call.what}: {self.host} did not answer within {self.timeout:g}s (timed out)",
                registry=self.registry,
            ) from None

    async def _open(self, call: Call, content: AsyncIterable[bytes] | None) -> httpx.Response:
        await self.bucket.acquire()
        if call.metered and self.quota.exhausted(trio.current_time()):
            raise quota_exhausted(self.registry, self.quota.window, user=self.user)
        request = self.http.build_request(
            call.method,
            _with_params(
                self.base_url + call.url if call.url.startswith("/") else call.url, call.params
            ),
            headers=list(call.headers),
            content=content if content is not None else call.content,
            extensions={SCOPES_EXTENSION: call.scopes},
        )
        self.counts[call.key] += 1
        try:
            with map_exceptions(
                registry=self.registry, host=self.host, timeout=self.timeout, what=call.what
            ):
                response = await self.http.send(
                    request, stream=True, follow_redirects=call.follow_redirects
                )
        except RegsyncError:
            observe.requested(self.registry, call.method, None)
            raise
        observe.requested(self.registry, call.method, response.status_code)
        self._observe(response)
        if response.is_success:
            return response
        try:
            body = await self._read(response, ERROR_BODY_LIMIT)
        finally:
            await response.aclose()
        raise error_from_response(
            response,
            self.registry,
            call.what,
            body=body,
            user=self.user,
            repository=call.repository,
        )

    async def _read(self, response: httpx.Response, limit: int, what: str = "") -> bytes:
        """Up to `limit` bytes of the body; the rest is left unread (the connection is dropped)."""
        parts: list[bytes] = []
        total = 0
        with map_exceptions(
            registry=self.registry, host=self.host, timeout=self.timeout, what=what
        ):
            async for chunk in response.aiter_bytes():
                parts.append(chunk)
                total += len(chunk)
                if total >= limit:
                    break
        return b"".join(parts)[:limit]

    def _observe(self, response: httpx.Response) -> None:
        warning = self.quota.observe(response.headers, trio.current_time())
        if self.quota.remaining is not None and "ratelimit-remaining" in response.headers:
            observe.ratelimited(self.registry, self.quota.remaining)
        if warning is not None:
            _log.warning("registry %r: %s", self.registry, warning)

    def _retried(self, attempt: int, delay: float, error: RegsyncError) -> None:
        self.counts["retry"] += 1
        observe.retried(self.registry)
        _log.warning(
            "registry %r: attempt %d of %d failed, retrying in %.1fs: %s",
            self.registry,
            attempt,
            self.retry.max_attempts,
            delay,
            error,
        )


def _with_params(url: str, params: tuple[tuple[str, str], ...]) -> str:
    """`url` with `params` appended to its query, kept as a string.

    Not httpx's `params=`, which would replace an upload Location's own query; and not
    `httpx.URL(...).copy_merge_params`: httpx parses URLs character by character in Python and
    upload Locations carry long state tokens; a profiled full sync spent ~15 % of its CPU in
    that parser, which now runs once per request instead of up to three times.
    """
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def _reply(response: httpx.Response, body: bytes) -> Reply:
    return Reply(
        response.status_code,
        response.headers,
        body,
        {rel: link for rel, link in response.links.items() if rel},
    )
