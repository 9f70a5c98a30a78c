"""What happens to one tag, decided once: facts about both sides in, an action out (pure).

The copy (`TagCopier.copy_tag`), the dry run (`TagCopier.plan_tag`, behind `regsyncd check` and
the API's PlanTask) and nothing else decide from the same ladder, in this order:

    facts (HEADs, the target's record, memory)      action
    --------------------------------------------    --------------
    target tag holds the source digest               SKIP_UNCHANGED
    target index is our rewrite of that source       SKIP_UNCHANGED   (platform filter only)
    an earlier run learnt the image's platform,
      and the rule's filter does not select it       SKIP_PLATFORM    (no GET this time)
    no such tag at the target                        COPY_NEW
    otherwise                                        COPY_CHANGED

The engine gathers the facts (HEADs of both sides; one target GET only when `maybe_rewritten`
names an index to read) and does what the action says; a referrer count, gathered by the dry
run, only changes what the plan shows (`planned`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from ..oci.jsondoc import parse_json
from ..oci.manifest import wants_platform
from ..oci.types import IMAGE_TYPES, INDEX_TYPES, Descriptor
from ..values.platform import Platform

#: annotation regsync adds to an index it rewrote, so a re-run can tell "unchanged" with HEADs
#: on the source and one GET on the target, never a GET on the source
SOURCE_DIGEST_ANNOTATION = "io.regsync.source.digest"

NOT_SELECTED = "platform not selected by the rule"


class Action(Enum):
    """What the engine does with one tag, from HEADs alone."""

    SKIP_UNCHANGED = "unchanged"  # the target has it (its referrers still follow)
    SKIP_PLATFORM = "platform"  # a single-platform image the filter does not select
    COPY_NEW = "new"  # GET the source and copy: the target has no such tag
    COPY_CHANGED = "changed"  # GET the source and copy: the target tag points elsewhere


class Verb(StrEnum):
    """The word a dry run shows for a tag (the API's `PlannedTag.action`, the console)."""

    COPY = "copy"
    SKIP = "skip"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class PlatformFilter:
    """A rule's platform selection; empty (falsy) when the rule copies every platform."""

    architectures: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.architectures or self.platforms)

    def wants(self, platform: Platform) -> bool:
        return wants_platform(
            platform, architectures=self.architectures, platforms=self.platforms
        )


@dataclass(frozen=True, slots=True)
class TagFacts:
    """What the engine knows of one tag before it reads any manifest body from the source."""

    source: Descriptor  # the source's HEAD
    target: Descriptor | None  # the target's HEAD; None: no such tag there
    #: the source digest the target's index records (SOURCE_DIGEST_ANNOTATION), read only when
    #: `maybe_rewritten` names that index
    recorded_source: str | None = None
    #: the platform an earlier run learnt for the source digest (engine/platform_memory.py)
    remembered: Platform | None = None


@dataclass(frozen=True, slots=True)
class TagPlan:
    """One line of a dry run."""

    tag: str
    action: Verb
    reason: str
    source_digest: str = ""
    target_digest: str = ""
    referrers: int = 0  # referrer manifests a run would copy with the tag


@dataclass(frozen=True, slots=True)
class ReferrersPlanned:
    """What a run would do with a tag's referrers (the dry run of engine/referrers.py)."""

    count: int = 0  # referrer manifests it would copy
    #: referrer tags of the tag's own index that stay behind: the filter rewrites the index
    left_behind: int = 0


def maybe_rewritten(
    source: Descriptor, target: Descriptor | None, platforms: PlatformFilter
) -> Descriptor | None:
    """The target's index when it may be our rewrite of the source (a platform filter drops
    entries, so the digests differ by design): its recorded source then decides."""
    if target is None or target.digest == source.digest:
        return None
    if not platforms or target.media_type not in INDEX_TYPES:
        return None
    return target


def recorded_source(raw: bytes) -> str | None:
    """The source digest an index we rewrote records; None for any other document."""
    try:
        document = parse_json(raw)
    except ValueError:
        return None
    annotations = document.get("annotations") if isinstance(document, dict) else None
    value = annotations.get(SOURCE_DIGEST_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def decide(facts: TagFacts, platforms: PlatformFilter) -> Action:
    """The ladder of the module docstring."""
    source, target = facts.source, facts.target
    if target is not None and (
        target.digest == source.digest
        or (maybe_rewritten(source, target, platforms) is not None
            and facts.recorded_source == source.digest)
    ):
        return Action.SKIP_UNCHANGED
    if (
        platforms
        and source.media_type in IMAGE_TYPES
        and facts.remembered is not None
        and not platforms.wants(facts.remembered)
    ):
        return Action.SKIP_PLATFORM
    return Action.COPY_NEW if target is None else Action.COPY_CHANGED


def follows_referrers(action: Action) -> bool:
    """Whether the referrers of the source digest count for this tag: not for an image the
    rule does not copy."""
    return action is not Action.SKIP_PLATFORM


def planned(
    tag: str, action: Action, facts: TagFacts, referrers: ReferrersPlanned = ReferrersPlanned()
) -> TagPlan:
    """The dry run's line for `action`; referrers to copy turn an unchanged tag into a copy."""
    source = facts.source.digest
    target = facts.target.digest if facts.target is not None else ""
    count = referrers.count
    note = f"; referrers: {count} to copy" if count else ""
    if referrers.left_behind:
        note += (f"; {referrers.left_behind} referrer tags of the index not copied: the "
                 "platform filter rewrites it")
    if action is Action.SKIP_PLATFORM:
        return TagPlan(tag, Verb.SKIP, NOT_SELECTED, source)
    if action is Action.SKIP_UNCHANGED:
        return TagPlan(tag, Verb.COPY if count else Verb.SKIP, "unchanged" + note, source,
                       target, count)
    if action is Action.COPY_NEW:
        return TagPlan(tag, Verb.COPY, "new tag" + note, source, referrers=count)
    return TagPlan(tag, Verb.COPY, f"changed (target has {target})" + note, source, target,
                   count)


def failed(tag: str, reason: str) -> TagPlan:
    """The dry run's line for a tag (or, tag "", a repository) that could not be planned."""
    return TagPlan(tag, Verb.FAIL, reason)
