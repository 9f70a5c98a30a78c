"""When and how long to wait before trying a registry request again.

The policy is pure (`RetryPolicy.delay` is a function of the attempt number and a random draw), so
backoff is tested as a table; `retrying` is the one place that sleeps, with `trio.sleep`, so tests
on trio's autojump clock assert exact virtual time.

Only errors that say they are temporary are retried (`RegsyncError.temporary`: 5xx, 429, network
failures). Everything else (auth, not found, digest mismatch...) fails at once: repeating the same
request cannot change the answer.

Retries happen at one level: the innermost that can replay the failed step. A request is retried
by the session (registry/session.py); a blob transfer is retried whole by the engine
(engine/blobs.py) only for what no request could replay (a body that broke mid-stream, an
upload whose streamed body failed, a transfer under the throughput floor). An error a level
already gave up on is spent: no level above tries again, so a source failing every request sees
`max_attempts` of them, not `max_attempts` squared.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import trio

from ..base.errors import ConfigError, RegistryError, RegsyncError

if TYPE_CHECKING:
    from ..settings import RetrySettings

T = TypeVar("T")

#: a registry's Retry-After is honoured up to this many seconds; longer asks are someone else's job
#: (the scheduler's next run), not a sleep inside one request
MAX_RETRY_AFTER = 300.0
#: beyond this exponent the exponential has long since hit `maximum` (and 2.0**2000 overflows)
_MAX_EXPONENT = 64


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; `max_attempts` counts the first try too."""

    max_attempts: int = 5
    initial: float = 1.0
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"retry max_attempts must be at least 1, not {self.max_attempts}")
        if self.initial < 0 or self.maximum < self.initial:
            raise ConfigError(
                f"retry intervals must satisfy 0 <= initial <= maximum"
                f" (got initial={self.initial}, maximum={self.maximum})"
            )
        if self.multiplier < 1:
            raise ConfigError(f"retry multiplier must be at least 1, not {self.multiplier}")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"retry jitter must be in [0, 1), not {self.jitter}")

    @classmethod
    def from_settings(cls, s: RetrySettings) -> RetryPolicy:
        """The policy a user configured under `global.retry`."""
        return cls(max_attempts=s.max_attempts, initial=s.initial_interval, maximum=s.max_interval)

    def delay(self, attempt: int, *, retry_after: float | None = None, rand: float = 0.5) -> float:
        """Seconds to wait before retry number `attempt` (1 = the first retry).

        `initial * multiplier**(attempt-1)`, capped at `maximum`, then spread by +/- `jitter`
        (`rand` in [0, 1); 0.5 means no spread) so that many clients failing together do not
        retry together. A registry's Retry-After wins when it asks for longer (capped at
        `MAX_RETRY_AFTER`).
        """
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        base = min(self.initial * self.multiplier**exponent, self.maximum)
        wait = base * (1.0 + self.jitter * (2.0 * rand - 1.0))
        if retry_after is not None:
            wait = max(wait, min(max(retry_after, 0.0), MAX_RETRY_AFTER))
        return wait


#: errors some level of `retrying` gave up on (weakly held: they live as long as they are raised)
_spent: weakref.WeakSet[BaseException] = weakref.WeakSet()


def is_temporary(error: BaseException) -> bool:
    """Whether the same request may succeed later (a regsync error that says so)."""
    return isinstance(error, RegsyncError) and error.temporary


def is_spent(error: BaseException) -> bool:
    """Whether a level of `retrying` already gave up on `error` (no other level retries it)."""
    return error in _spent


def _retry_after(error: RegsyncError) -> float | None:
    return error.retry_after if isinstance(error, RegistryError) else None


async def retrying(
    policy: RetryPolicy,
    operation: Callable[[], Awaitable[T]],
    *,
    describe: str,
    on_retry: Callable[[int, float, RegsyncError], None] | None = None,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run `operation` until it succeeds, retrying temporary regsync errors per `policy`.

    `on_retry(attempt, delay, error)` is called before each sleep (for logs and counters).

    Raises:
        RegsyncError: a non-temporary error at once, and one an inner `retrying` gave up on
            (retries happen at one level); the last temporary one after `policy.max_attempts`
            attempts, its message saying so.
    """
    attempt = 1
    while True:
        try:
            return await operation()
        except RegsyncError as error:
            if not is_temporary(error) or is_spent(error):
                raise
            if attempt >= policy.max_attempts:
                _note_attempts(error, describe, attempt)
                _spent.add(error)
                raise
            wait = policy.delay(attempt, retry_after=_retry_after(error), rand=rand())
            if on_retry is not None:
                on_retry(attempt, wait, error)
        await trio.sleep(wait)
        attempt += 1


def _note_attempts(error: RegsyncError, describe: str, attempts: int) -> None:
    """Say in the error's own message how hard we tried (the type and fields stay as they are)."""
    noun = "attempt" if attempts == 1 else "attempts"
    message = str(error.args[0]) if error.args else type(error).__name__
    error.args = (f"{message} (gave up on {describe} after {attempts} {noun})", *error.args[1:])
