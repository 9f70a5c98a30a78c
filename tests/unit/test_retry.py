"""Backoff policy as a table, and `retrying` on trio's autojump clock (exact virtual time)."""

from __future__ import annotations

import pytest
import trio
from regsync.daemon.base.errors import (
    AuthError,
    ConfigError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    RegsyncError,
    RemoteServerError,
)
from regsync.daemon.registry.retry import MAX_RETRY_AFTER, RetryPolicy, is_temporary, retrying
from regsync.daemon.settings import RetrySettings

POLICY = RetryPolicy(max_attempts=4, initial=1.0, maximum=30.0, multiplier=2.0, jitter=0.2)


@pytest.mark.parametrize(
    ("attempt", "rand", "retry_after", "expected"),
    [
        (1, 0.5, None, 1.0),
        (2, 0.5, None, 2.0),
        (3, 0.5, None, 4.0),
        (5, 0.5, None, 16.0),
        (6, 0.5, None, 30.0),  # 32 capped at maximum
        (500, 0.5, None, 30.0),  # no overflow for absurd attempt numbers
        (1, 0.0, None, 0.8),  # -20 % jitter
        (3, 1.0, None, 4.8),  # +20 % jitter
        (1, 0.5, 7.0, 7.0),  # Retry-After asks for longer: it wins
        (4, 0.5, 3.0, 8.0),  # Retry-After shorter than the backoff: backoff wins
        (1, 0.5, 10_000.0, MAX_RETRY_AFTER),  # an absurd Retry-After is capped
        (1, 0.5, -5.0, 1.0),
    ],
)
def test_delay_table(attempt: int, rand: float, retry_after: float | None, expected: float) -> None:
    assert POLICY.delay(attempt, retry_after=retry_after, rand=rand) == pytest.approx(expected)


def test_from_settings() -> None:
    policy = RetryPolicy.from_settings(
        RetrySettings(max_attempts=3, initial_interval=0.5, max_interval=4.0)
    )
    assert (policy.max_attempts, policy.initial, policy.maximum) == (3, 0.5, 4.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial": 5.0, "maximum": 1.0}, {"multiplier": 0.5}, {"jitter": 1.0}],
)
def test_invalid_policy_is_a_config_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "temporary"),
    [
        (NetworkError("reset"), True),
        (RateLimitError("429"), True),
        (RemoteServerError("503", temporary=True), True),
        (RemoteServerError("bad json"), False),
        (AuthError("401"), False),
        (NotFoundError("404"), False),
        (ValueError("not ours"), False),
    ],
)
def test_is_temporary(error: BaseException, temporary: bool) -> None:
    assert is_temporary(error) is temporary


class Flaky:
    """Fails with the given errors in order, then returns "ok"."""

    def __init__(self, *errors: RegsyncError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


NO_JITTER = RetryPolicy(max_attempts=4, initial=1.0, maximum=30.0, jitter=0.0)


async def test_retries_temporary_errors_with_backoff(autojump_clock: trio.abc.Clock) -> None:
    operation = Flaky(NetworkError("reset"), RemoteServerError("503", temporary=True))
    seen: list[tuple[int, float]] = []
    start = trio.current_time()
    result = await retrying(
        NO_JITTER, operation, describe="GET x", on_retry=lambda a, d, e: seen.append((a, d))
    )
    assert result == "ok"
    assert operation.calls == 3
    assert seen == [(1, 1.0), (2, 2.0)]
    assert trio.current_time() - start == pytest.approx(3.0)


async def test_gives_up_after_max_attempts_and_says_so(autojump_clock: trio.abc.Clock) -> None:
    operation = Flaky(*(NetworkError(f"reset {i}", registry="hub") for i in range(10)))
    start = trio.current_time()
    with pytest.raises(NetworkError) as caught:
        await retrying(NO_JITTER, operation, describe="GET manifest a:1")
    assert operation.calls == 4
    assert trio.current_time() - start == pytest.approx(1.0 + 2.0 + 4.0)
    assert str(caught.value) == (
        "registry 'hub': reset 3 (gave up on GET manifest a:1 after 4 attempts)"
    )


async def test_an_error_an_inner_level_gave_up_on_is_not_retried_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Retries at one level: a transfer retried around requests that retry does not multiply
    the attempts (4, not 16), but a failure the inner level never saw is retried outside."""
    operation = Flaky(*(NetworkError(f"reset {i}") for i in range(20)))

    async def request() -> str:
        return await retrying(NO_JITTER, operation, describe="GET blob")

    with pytest.raises(NetworkError, match="after 4 attempts"):
        await retrying(NO_JITTER, request, describe="copy blob")
    assert operation.calls == 4
    midway = Flaky(NetworkError("broke mid-body"))  # raised outside any inner `retrying`
    assert await retrying(NO_JITTER, midway, describe="copy blob") == "ok"
    assert midway.calls == 2


async def test_permanent_error_propagates_at_once(autojump_clock: trio.abc.Clock) -> None:
    operation = Flaky(AuthError("denied"))
    start = trio.current_time()
    with pytest.raises(AuthError, match="^denied$"):
        await retrying(NO_JITTER, operation, describe="x")
    assert operation.calls == 1
    assert trio.current_time() == start


async def test_retry_after_is_honoured(autojump_clock: trio.abc.Clock) -> None:
    throttled = RateLimitError("slow down", retry_after=7.0)
    operation = Flaky(throttled)
    start = trio.current_time()
    assert await retrying(NO_JITTER, operation, describe="x") == "ok"
    assert trio.current_time() - start == pytest.approx(7.0)


async def test_jitter_uses_the_random_source(autojump_clock: trio.abc.Clock) -> None:
    operation = Flaky(NetworkError("a"), NetworkError("b"))
    start = trio.current_time()
    await retrying(POLICY, operation, describe="x", rand=lambda: 1.0)
    assert trio.current_time() - start == pytest.approx(1.2 + 2.4)
