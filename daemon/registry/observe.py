"""Who wants to know about registry requests: a hook the transport calls, with no dependency.

The transport (`transport.Session`) reports every answer, failed attempt, retry and Docker Hub
quota announcement here; `regsyncd serve --metrics-listen` registers its Prometheus counters as
an observer. Nothing is registered in `regsyncd once`, so the cost there is one empty loop.
Observers must not raise and must not block: they run on the trio thread inside each request.
"""

from __future__ import annotations

from typing import Protocol


class RequestObserver(Protocol):
    def request(self, registry: str, method: str, code: int | None) -> None:
        """One request answered with HTTP `code`, or None when no answer came (network)."""

    def retry(self, registry: str) -> None:
        """A failed attempt is about to be retried."""

    def ratelimit(self, registry: str, remaining: int) -> None:
        """The registry announced how many pulls are left (`RateLimit-Remaining`)."""


_observers: list[RequestObserver] = []


def add_observer(observer: RequestObserver) -> None:
    _observers.append(observer)


def remove_observer(observer: RequestObserver) -> None:
    if observer in _observers:
        _observers.remove(observer)


def requested(registry: str, method: str, code: int | None) -> None:
    for observer in _observers:
        observer.request(registry, method, code)


def retried(registry: str) -> None:
    for observer in _observers:
        observer.retry(registry)


def ratelimited(registry: str, remaining: int) -> None:
    for observer in _observers:
        observer.ratelimit(registry, remaining)
