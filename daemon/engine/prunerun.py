"""Pruning within a run: after every copy, each pruning rule's target repositories lose the tags
its selection lacks, only if nothing of that rule failed. Also the dry run's view of it.

Safe by construction (the order of the checks):
1. A rule with any failed result (its catalog, a listing, a tag, a referrer) prunes nothing, in
   any of its repositories, and says so: a selection that was not fully seen is not a selection.
2. Deletions start only when the run's copies have all ended (Run calls `run` last).
3. A repository's prune over its `prune_max` deletes nothing (a failed result, kind
   "prune-limit"), unless the run is forced.
4. Each deletion is a result (outcome deleted: the tag and the digest it pointed at) and a log
   line; a tag kept because deleting it would remove a kept one is a warning in the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..base.errors import RegsyncError
from ..base.safetext import escape_controls
from ..settings import Endpoint, SyncRule
from .events import Outcome, TagResult
from .filters import TagSelection
from .plan import TagPlan, Verb
from .prune import Deletion, PruneDecision
from .pruner import Pruner
from .side import Side

#: the note of a plan or run whose rule had a failure
SKIPPED = "prune skipped: {count} of this rule's results failed (a listing or a tag), so nothing" \
          " is deleted"


@dataclass(frozen=True, slots=True)
class PruneJob:
    rule: SyncRule  # one repository's rule (a glob's concrete rule)
    kept: frozenset[str]  # its whole selection, whatever a retry or resume copies


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What a run would delete, apart from what it would copy (tags shown as the plan shows
    them: `repository:tag` in a glob rule)."""

    deletions: tuple[Deletion, ...] = ()
    #: tag -> why it would be kept where the registry deletes only by digest
    blocked: Mapping[str, str] = field(default_factory=dict)
    #: why nothing would be deleted, or what would stop the prune
    notes: tuple[str, ...] = ()


Log = Callable[[str, str, str], None]  # level, message, rule


class PruneStage:
    """The prunes of one run, queued while its rules are listed, run after its copies."""

    def __init__(self, *, force: bool, log: Log, side: Callable[[Endpoint], Side],
                 finish: Callable[[TagResult], None],
                 fail: Callable[[SyncRule, str, RegsyncError], None]) -> None:
        self._force = force
        self._log = log
        self._side = side
        self._finish = finish
        self._fail = fail
        self._rules: dict[str, None] = {}
        self._jobs: list[PruneJob] = []
        self._tag_deletes: dict[str, bool] = {}  # per target registry, learnt once a run

    def want(self, rule: SyncRule) -> None:
        """The rule prunes (called for each pruning rule, before its listings)."""
        self._rules.setdefault(rule.name)

    def add(self, rule: SyncRule, kept: Sequence[str]) -> None:
        self._jobs.append(PruneJob(rule, frozenset(kept)))

    async def run(self, failed: Mapping[str, int]) -> None:
        """Prune what was added, except the rules with failed results (`failed`: how many per
        rule; a run counts them rather than keep every result). Read once, before any prune:
        a prune that fails adds its rule to the run's count, and the rule's other repositories
        must not then depend on which of them happened to be pruned first."""
        failed = dict(failed)
        for name in self._rules:
            if name in failed:
                self._log("warning", SKIPPED.format(count=failed[name]), name)
        for job in self._jobs:
            if job.rule.name not in failed:
                await self._one(job)

    def _pruner(self, rule: SyncRule) -> Pruner:
        def log(level: str, message: str) -> None:
            self._log(level, f"{rule.target.repository}: {message}", rule.name)

        return Pruner(self._side(rule.target), log=log, tag_deletes=self._tag_deletes)

    async def _one(self, job: PruneJob) -> None:
        rule, repository = job.rule, job.rule.source.repository
        pruner = self._pruner(rule)

        def deleted(d: Deletion) -> None:
            self._log("info", f"{rule.target.repository}: pruned {escape_controls(d.tag)}"
                      f" ({d.digest}): {d.reason}", rule.name)
            self._finish(TagResult(rule.name, d.tag, Outcome.DELETED, digest=d.digest,
                                   reason=f"pruned: {d.reason}", repository=repository))

        try:
            decision = await pruner.survey(job.kept, rule.prune_max)
            self._log("info", f"{rule.target.repository}: prune: {len(decision.deletions)} of"
                      f" {decision.total} target tags not selected", rule.name)
            await pruner.apply(decision, force=self._force, on_deleted=deleted)
        except RegsyncError as exc:
            self._fail(rule, repository, exc)

    async def plan(self, rule: SyncRule, kept: Sequence[str], plans: Sequence[TagPlan],
                   *, prefix: str = "") -> PrunePlan:
        """One repository's prune as a run would do it now (reads only). Planned copies count
        as kept tags at the digests they would have."""
        label = f"{prefix[:-1]}: " if prefix else ""  # "repository:" -> "repository: "
        copies = {p.tag: p.source_digest for p in plans if p.action is Verb.COPY and p.source_digest}
        try:
            decision = await self._pruner(rule).survey(kept, rule.prune_max, planned=copies)
        except RegsyncError as exc:
            return PrunePlan(notes=(f"{label}prune cannot be planned: [{exc.kind}] {exc}",))
        notes: list[str] = []
        failing = sum(p.action is Verb.FAIL for p in plans)
        if failing:
            notes.append(label + SKIPPED.format(count=failing))
        if not decision.within_limit:
            notes.append(label + decision.limit_message())
        return _shown(decision, prefix, tuple(notes))


    async def plan_glob(self, repositories: Sequence[SyncRule], selection: TagSelection,
                        plans: Sequence[TagPlan]) -> PrunePlan:
        """A glob rule's prune plan, from its plan (tags as `repository:tag`) and the
        repositories that plan matched: one failure anywhere and none of them is pruned."""
        parts = []
        failing = sum(p.action is Verb.FAIL for p in plans)
        if failing:
            parts.append(PrunePlan(notes=(SKIPPED.format(count=failing),)))
        for one in repositories:
            prefix = f"{one.source.repository}:"
            kept = [t[len(prefix):] for t in selection.kept if t.startswith(prefix)]
            mine = [replace(p, tag=p.tag[len(prefix):]) for p in plans
                    if p.tag.startswith(prefix) and p.action is not Verb.FAIL]
            parts.append(await self.plan(one, kept, mine, prefix=prefix))
        return merge_plans(parts)


def _shown(decision: PruneDecision, prefix: str, notes: tuple[str, ...]) -> PrunePlan:
    deletions = tuple(Deletion(prefix + d.tag, d.digest, d.reason) for d in decision.deletions)
    blocked = {prefix + tag: why for tag, why in decision.blocked.items()}
    return PrunePlan(deletions, blocked, notes)


def merge_plans(plans: Sequence[PrunePlan]) -> PrunePlan:
    """A glob rule's repositories' prune plans as one."""
    return PrunePlan(
        tuple(d for p in plans for d in p.deletions),
        {tag: why for p in plans for tag, why in p.blocked.items()},
        tuple(n for p in plans for n in p.notes),
    )
