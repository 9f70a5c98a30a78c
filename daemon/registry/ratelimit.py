"""Staying under a registry's request limits: our own QPS cap, and Docker Hub's pull quota headers.

`TokenBucket` is the per-registry `qps` setting: every request takes a token first; tokens refill
continuously at `qps` per second up to `burst`. Waiters are served in arrival order (a fair
`trio.Lock`), so one busy transfer cannot starve the others.

Docker Hub announces its pull quota on manifest responses (`RateLimit-Limit: 100;w=21600`,
`RateLimit-Remaining: 76;w=21600`); the parsers here are pure, the policy lives in the transport.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import trio

from ..base.errors import ConfigError

_QUOTA = re.compile(r"\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?")


class TokenBucket:
    """A per-registry request-rate limit on trio; unlimited when `qps` is None."""

    def __init__(self, qps: float | None, burst: int = 1) -> None:
        if qps is not None and qps <= 0:
            raise ConfigError(f"qps must be positive (or unset for no limit), not {qps}")
        if burst < 1:
            raise ConfigError(f"burst must be at least 1, not {burst}")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        # set on first use: trio's clock only exists inside trio.run
        self._stamp: float | None = None
        self._lock = trio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request is allowed, then take that permission."""
        if self.qps is None:
            await trio.lowlevel.checkpoint()
            return
        async with self._lock:
            self._refill(self.qps)
            if self._tokens < 1.0:
                await trio.sleep((1.0 - self._tokens) / self.qps)
                self._refill(self.qps)
            # float rounding may leave 0.999...: the sleep above was exact, so clamp
            self._tokens = max(self._tokens - 1.0, 0.0)

    def _refill(self, qps: float) -> None:
        now = trio.current_time()
        if self._stamp is not None:
            self._tokens = min(self._tokens + (now - self._stamp) * qps, float(self.burst))
        self._stamp = now

    def __repr__(self) -> str:
        return f"TokenBucket(qps={self.qps!r}, burst={self.burst})"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works on plain dicts as well as httpx.Headers."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _parse_quota(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    # Hub sends "76;w=21600"; a comma-separated list of policies is allowed: take the first
    match = _QUOTA.match(value.split(",")[0])
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def parse_ratelimit_remaining(headers: Mapping[str, str]) -> tuple[int, int] | None:
    """(remaining, window seconds) from `RateLimit-Remaining: 76;w=21600`, or None if absent.

    A missing window is reported as 0 (unknown).
    """
    return _parse_quota(_header(headers, "RateLimit-Remaining"))


def parse_ratelimit_limit(headers: Mapping[str, str]) -> tuple[int, int] | None:
    """(limit, window seconds) from `RateLimit-Limit: 100;w=21600`, or None if absent."""
    return _parse_quota(_header(headers, "RateLimit-Limit"))


class HubQuota:
    """Docker Hub's pull quota as the registry last announced it.

    Hub counts manifest GETs, and its window is hours long, so sleeping cannot help. Policy:
    - when the quota is down to 0, the next metered request fails at once (no request sent) with
      a non-temporary RateLimitError until the announced window has passed since we saw it;
    - when fewer than `LOW_FRACTION` of the limit (and at most `LOW_FLOOR` pulls) remain, warn
      once per window, so a user sees the wall coming before the run hits it.
    """

    LOW_FRACTION = 0.05
    LOW_FLOOR = 10

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.limit: int | None = None
        self.window = 0
        self._seen_at = 0.0
        self._warned_at: float | None = None

    def observe(self, headers: Mapping[str, str], now: float) -> str | None:
        """Record the quota headers of a response; a warning text the first time it runs low."""
        remaining = parse_ratelimit_remaining(headers)
        if remaining is None:
            return None
        self.remaining, self.window = remaining
        self._seen_at = now
        limit = parse_ratelimit_limit(headers)
        self.limit = limit[0] if limit else self.limit
        if not self._low() or self._warned_recently(now):
            return None
        self._warned_at = now
        of = f" of {self.limit}" if self.limit else ""
        return (
            f"Docker Hub pull quota low: {self.remaining}{of} pulls left in this"
            f" {self.window}s window"
        )

    def exhausted(self, now: float) -> bool:
        """Whether the last announcement said 0 left and its window has not passed yet."""
        if self.remaining != 0:
            return False
        # without a window we cannot know when it refills: let the registry's 429s decide
        return self.window > 0 and now - self._seen_at < self.window

    def _low(self) -> bool:
        if self.remaining is None:
            return False
        if self.limit:
            threshold = min(self.limit * self.LOW_FRACTION, self.LOW_FLOOR)
            return self.remaining < max(threshold, 1)
        return self.remaining < self.LOW_FLOOR

    def _warned_recently(self, now: float) -> bool:
        return self._warned_at is not None and now - self._warned_at < max(self.window, 1)
