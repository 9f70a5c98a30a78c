"""What a run reports: its counters, the first failures, and every result only when asked.

Apart from the run so that its readers (the console, the executor, tests) need not import the
machinery; the counters are the whole story, so a run of a million tags stays small.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .events import Counters, TagResult

#: failures a report keeps (with their reasons) for a summary; the counters count them all
KEPT_FAILURES = 100


@dataclass(slots=True)
class RunReport:
    counters: Counters = field(default_factory=Counters)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    #: the first KEPT_FAILURES failed results, in the order they ended
    failures: list[TagResult] = field(default_factory=list)
    #: listed names that are not tags (reported as skipped, never requested)
    invalid_names: int = 0
    #: repositories the run's globs matched in their catalogs
    repositories: int = 0
    #: every result, only for a caller that asked for them (`keep_results`: tests, small runs)
    results: list[TagResult] = field(default_factory=list)
    #: failed results per rule, all of them counted (pruning skips a rule with any)
    failed_by_rule: dict[str, int] = field(default_factory=dict)

    @property
    def referrers_copied(self) -> int:
        """Referrer manifests (signatures, SBOMs, attestations) copied with their subjects."""
        return self.counters.referrers_copied

    @property
    def ok(self) -> bool:
        return self.counters.tags_failed == 0

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started
