"""TokenBucket timing on the autojump clock; Docker Hub quota headers and policy."""

from __future__ import annotations

import httpx
import pytest
import trio
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.registry.ratelimit import (
    HubQuota,
    TokenBucket,
    parse_ratelimit_limit,
    parse_ratelimit_remaining,
)


async def times_of(bucket: TokenBucket, count: int) -> list[float]:
    start = trio.current_time()
    stamps = []
    for _ in range(count):
        await bucket.acquire()
        stamps.append(trio.current_time() - start)
    return stamps


async def test_unlimited_bucket_never_waits(autojump_clock: trio.abc.Clock) -> None:
    assert await times_of(TokenBucket(None), 50) == [0.0] * 50


async def test_requests_are_spaced_at_qps(autojump_clock: trio.abc.Clock) -> None:
    stamps = await times_of(TokenBucket(10.0), 5)
    assert stamps == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


async def test_burst_then_steady_rate(autojump_clock: trio.abc.Clock) -> None:
    stamps = await times_of(TokenBucket(1.0, burst=3), 5)
    assert stamps == pytest.approx([0.0, 0.0, 0.0, 1.0, 2.0])


async def test_idle_time_refills_up_to_burst_only(autojump_clock: trio.abc.Clock) -> None:
    bucket = TokenBucket(2.0, burst=2)
    await times_of(bucket, 2)
    await trio.sleep(100)
    assert await times_of(bucket, 3) == pytest.approx([0.0, 0.0, 0.5])


async def test_concurrent_waiters_share_the_rate(autojump_clock: trio.abc.Clock) -> None:
    bucket = TokenBucket(2.0)
    start = trio.current_time()
    done: list[float] = []

    async def one() -> None:
        await bucket.acquire()
        done.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(one)
    assert sorted(done) == pytest.approx([0.0, 0.5, 1.0, 1.5])


@pytest.mark.parametrize(("qps", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_invalid_bucket(qps: float, burst: int) -> None:
    with pytest.raises(ConfigError):
        TokenBucket(qps, burst)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit-Remaining": "76;w=21600"}, (76, 21600)),
        ({"ratelimit-remaining": "0;w=60"}, (0, 60)),
        ({"RateLimit-Remaining": "5"}, (5, 0)),
        ({"RateLimit-Remaining": "12;w=3600, 40;w=86400"}, (12, 3600)),
        ({"RateLimit-Remaining": "lots"}, None),
        ({}, None),
        (httpx.Headers({"RATELIMIT-REMAINING": "3;w=10"}), (3, 10)),
    ],
)
def test_parse_remaining(headers: dict[str, str], expected: tuple[int, int] | None) -> None:
    assert parse_ratelimit_remaining(headers) == expected


def test_parse_limit() -> None:
    assert parse_ratelimit_limit({"RateLimit-Limit": "100;w=21600"}) == (100, 21600)


def test_quota_exhausted_until_the_window_passes() -> None:
    quota = HubQuota()
    assert not quota.exhausted(0.0)
    quota.observe({"RateLimit-Remaining": "0;w=600"}, now=100.0)
    assert quota.exhausted(100.0) and quota.exhausted(699.0)
    assert not quota.exhausted(700.0)


def test_quota_without_window_does_not_block() -> None:
    quota = HubQuota()
    quota.observe({"RateLimit-Remaining": "0"}, now=0.0)
    assert not quota.exhausted(1.0)


def test_low_quota_warns_once_per_window() -> None:
    quota = HubQuota()
    headers = {"RateLimit-Limit": "100;w=600", "RateLimit-Remaining": "50;w=600"}
    assert quota.observe(headers, now=0.0) is None
    low = {"RateLimit-Limit": "100;w=600", "RateLimit-Remaining": "4;w=600"}
    assert quota.observe(low, now=1.0) == (
        "Docker Hub pull quota low: 4 of 100 pulls left in this 600s window"
    )
    assert quota.observe(low, now=2.0) is None
    assert quota.observe(low, now=700.0) is not None
