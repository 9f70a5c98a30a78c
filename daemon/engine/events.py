"""What a run tells the world while it works: results per tag, running counters and log lines.

The engine calls one `EventSink` synchronously and never waits on it; a terminal display, the
daemon's store writer and the gRPC Watch stream are all sinks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class Outcome(str, Enum):
    COPIED = "copied"
    SKIPPED = "skipped"
    FAILED = "failed"
    #: pruned: a target tag the rule's selection lacks, deleted after the copies (its digest)
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class TagResult:
    rule: str
    tag: str
    outcome: Outcome
    digest: str = ""  # what the target tag now points at ("" when failed)
    reason: str = ""  # why it failed, or a note on a copy ("index rewritten: ...")
    error_kind: str = ""  # failures only: config, auth, network, remote, digest-mismatch, ...
    repository: str = ""  # the source repository ("" in results stored before schema 5)

    @property
    def key(self) -> str:
        """What retry and resume know a result by: `repository:tag` (neither has a ":")."""
        return f"{self.repository}:{self.tag}" if self.repository else self.tag


@dataclass(slots=True)
class Counters:
    """Running totals; the engine mutates them, sinks read them."""

    tags_total: int = 0
    tags_copied: int = 0
    tags_skipped: int = 0
    tags_failed: int = 0
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_copied: int = 0
    #: target tags pruned (not part of tags_total: they are not source tags)
    tags_deleted: int = 0
    #: referrer manifests (signatures, SBOMs, attestations) copied with their subjects
    referrers_copied: int = 0

    @property
    def tags_done(self) -> int:
        return self.tags_copied + self.tags_skipped + self.tags_failed

    def count(self, result: TagResult) -> None:
        if result.outcome is Outcome.COPIED:
            self.tags_copied += 1
        elif result.outcome is Outcome.SKIPPED:
            self.tags_skipped += 1
        elif result.outcome is Outcome.DELETED:
            self.tags_deleted += 1
        else:
            self.tags_failed += 1


#: the counters' names, in order: the store's columns and the API's fields are named the same
COUNTER_FIELDS: tuple[str, ...] = tuple(Counters.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class LogEvent:
    level: str  # debug, info, warning, error
    message: str
    rule: str = ""
    time: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class TagsPlanned:
    """A rule's tag list is known: `count` more tags will be reported."""

    rule: str
    count: int


@dataclass(frozen=True, slots=True)
class RepositoryMatched:
    """A glob rule's catalog walk found one more repository of its scope (source name)."""

    rule: str
    repository: str


@dataclass(frozen=True, slots=True)
class RepositoriesListed:
    """A glob rule's catalog was walked to its end: `count` repositories matched, no more.
    Only then can the scope be compared with the last one (a failed walk removes nothing)."""

    rule: str
    count: int


@dataclass(frozen=True, slots=True)
class TagStarted:
    rule: str
    tag: str


@dataclass(frozen=True, slots=True)
class TagFinished:
    result: TagResult


@dataclass(frozen=True, slots=True)
class BytesMoved:
    """Blob bytes that reached the target (sent in chunks, for rate displays)."""

    count: int


Event = (LogEvent | TagsPlanned | TagStarted | TagFinished | BytesMoved | RepositoryMatched
         | RepositoriesListed)


class EventSink(Protocol):
    def __call__(self, event: Event, counters: Counters) -> None: ...


def discard(event: Event, counters: Counters) -> None:
    """The sink for callers that only want the final report."""
