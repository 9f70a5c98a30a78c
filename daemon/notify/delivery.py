"""Webhook delivery in the background: an execution's end never waits for a receiver.

The hub calls `Notifier.observe` synchronously for every event; at an execution's end it puts
one `Notice` in a bounded queue (a full queue drops the notice with a warning: never
backpressure on a run). `run` takes notices off the queue and delivers each to every webhook
that wants it, each delivery its own task: a receiver that hangs only delays itself. A delivery
is tried up to len(BACKOFF) + 1 times, each attempt bounded by `timeout`; its result is kept
in the store (the API and regsyncctl show it).

Hostile receivers: redirects are not followed (the signature and the body would go elsewhere),
at most `_BODY_READ` bytes of an answer are read and nothing of it is kept, errors name the
hook, not its URL (a Slack webhook URL is itself a credential), and never the secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import trio

from ..engine.events import Outcome, TagResult
from ..runtime.watch import WatchItem
from ..settings import NotificationSettings
from ..store.db import Database
from ..store.history import last_successes
from ..store.notifications import list_notifications, record_delivery
from ..store.records import DeliveryResult, TaskRecord
from ..store.repo import Repo
from .payload import MAX_FAILED, SIGNATURE_HEADER, Notice, encode, signature
from .rules import BACKOFF, backoff, event_for, stale_tasks, wants

log = logging.getLogger("regsync.notify")

QUEUE = 256  # notices waiting for delivery; beyond that they are dropped (and logged)
IN_FLIGHT = 16  # deliveries at once, all webhooks together
STALE_EVERY = 60.0  # seconds between staleness checks
_BODY_READ = 1024  # bytes of a receiver's answer read before closing (and then ignored)
TIMEOUT = 10.0  # seconds one attempt may take, connect to answer


def utc_now() -> datetime:
    return datetime.now(UTC)


class Notifier:
    def __init__(
        self, db: Database, *, panel_url: str | None = None, timeout: float | None = None,
        schedule: tuple[float, ...] | None = None, now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._panel_url = panel_url
        self._timeout = TIMEOUT if timeout is None else timeout
        self._schedule = BACKOFF if schedule is None else schedule
        self._now = now
        self._send, self._receive = trio.open_memory_channel[Notice](QUEUE)
        self._failed: dict[int, list[TagResult]] = {}
        self._stale: set[str] = set()
        self._limiter = trio.CapacityLimiter(IN_FLIGHT)
        self.delivered = trio.Event()  # set after each delivery ends (tests wait on it)

    # the hub's listener: synchronous, never blocks -------------------------------------------
    def observe(self, item: WatchItem) -> None:
        result = item.tag
        if result is not None and result.outcome is Outcome.FAILED:
            failed = self._failed.setdefault(item.execution_id, [])
            if len(failed) < MAX_FAILED:
                failed.append(result)
        record = item.execution
        if record is None or record.status.active:
            return
        failed_tags = tuple(self._failed.pop(record.id, ()))
        event = event_for(record.status)
        if event is not None:
            self.enqueue(Notice(event, record.task, record, failed_tags))

    def enqueue(self, notice: Notice) -> None:
        try:
            self._send.send_nowait(notice)
        except trio.WouldBlock:
            log.warning("webhooks: %d notices waiting; %s of task %r dropped",
                        QUEUE, notice.event, notice.task)

    # the background side ---------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with (httpx.AsyncClient(follow_redirects=False, trust_env=False) as http,
                    trio.open_nursery() as nursery):
            nursery.start_soon(self._stale_loop)
            task_status.started()
            async for notice in self._receive:
                hooks = await self._db.run(lambda repo: list_notifications())
                for hook in hooks:
                    if wants(hook.settings, notice.event, notice.task):
                        nursery.start_soon(self._deliver, http, hook.settings, notice)

    async def check_stale(self, now: datetime | None = None) -> None:
        """Tell `task.stale` once for each task that became stale since the last check."""
        moment = now or self._now()

        def read(repo: Repo) -> tuple[list[TaskRecord], dict[str, datetime], dict[str, datetime]]:
            tasks = repo.list_tasks()
            return tasks, last_successes(), {t.name: repo.task_created(t.name) for t in tasks}

        tasks, successes, created = await self._db.run(read)
        stale = {s.task: s for s in stale_tasks(tasks, successes, created, moment)}
        for name in stale.keys() - self._stale:
            self.enqueue(Notice("task.stale", name, stale=stale[name]))
        self._stale = set(stale)

    async def _stale_loop(self) -> None:
        while True:
            await trio.sleep(STALE_EVERY)
            await self.check_stale()

    async def _deliver(self, http: httpx.AsyncClient, hook: NotificationSettings,
                       notice: Notice) -> None:
        async with self._limiter:
            body = encode(notice, format=hook.format, panel_url=self._panel_url, now=self._now())
            headers = {"content-type": "application/json", "user-agent": "regsync-webhook"}
            if hook.secret:
                headers[SIGNATURE_HEADER] = signature(hook.secret, body)
            attempt = 0
            while True:
                attempt += 1
                code, error = await self._post(http, hook.url, body, headers)
                delay = None if not error else backoff(attempt, schedule=self._schedule)
                if delay is None:
                    break
                await trio.sleep(delay)
        result = DeliveryResult(notice.event, self._now(), not error, code, error, attempt)
        if error:
            log.warning("webhook %r: %s of task %r not delivered after %d attempts: %s",
                        hook.name, notice.event, notice.task, attempt, error)
        else:
            log.info("webhook %r: %s of task %r delivered", hook.name, notice.event, notice.task)
        with trio.CancelScope(shield=True):
            await self._db.run(lambda repo: record_delivery(hook.name, result))
        self.delivered.set()
        self.delivered = trio.Event()

    async def _post(self, http: httpx.AsyncClient, url: str, body: bytes,
                    headers: dict[str, str]) -> tuple[int, str]:
        """(status, "") when the receiver took it, else (status or 0, why not)."""
        with trio.move_on_after(self._timeout):
            try:
                async with http.stream("POST", url, content=body, headers=headers) as response:
                    async for _ in response.aiter_raw(_BODY_READ):
                        break  # read a little (a well-behaved connection), keep nothing
                    code = response.status_code
            except httpx.HTTPError as exc:
                return 0, _reason(exc)
            if 200 <= code < 300:
                return code, ""
            if 300 <= code < 400:
                return code, f"answered {code} (a redirect: not followed)"
            return code, f"answered {code}"
        return 0, f"no answer within {self._timeout:g}s"


def _reason(exc: httpx.HTTPError) -> str:
    """Why a request failed, in our words: httpx's messages may quote the URL."""
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect (refused, unreachable or a TLS failure)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "unsupported URL scheme"
    return f"the connection failed ({type(exc).__name__})"
