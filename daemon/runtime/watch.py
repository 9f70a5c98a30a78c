"""What watchers receive: one event of one execution (its record, a tag's result, a log
line, progress). The runtime publishes them through the hub; the API's Watch, the metrics
and the webhooks consume them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.events import Counters, LogEvent, TagResult
from ..store.records import ExecutionRecord


@dataclass(frozen=True, slots=True)
class WatchItem:
    """One event for watchers; exactly one of the optional fields is set."""

    execution_id: int
    task: str
    execution: ExecutionRecord | None = None
    tag: TagResult | None = None
    log: LogEvent | None = None
    progress: Counters | None = None
    current_tag: str = ""
