"""What a prune deletes, decided from names and digests alone (pure): the rules in one place.

After a rule's copies, its target repository should hold the rule's selection and nothing
else. Given the target's tags (tag -> digest), the selection, and the children of the kept
indexes, `decide` answers, in this order of rules:

    a tag in the selection                              kept
    a referrer tag (`sha256-<hex>[.sig|.att|.sbom]`)    kept while its subject is kept (a kept
                                                        tag's manifest, a child of a kept index
                                                        at any depth, or a kept referrer), else
                                                        deleted: "its subject is gone"
    any other tag                                       deleted: "not in the rule's selection"

Deleting by digest removes every tag pointing at that manifest, so where the registry cannot
delete a tag by name a deletion whose digest is protected (a kept tag points at it, a kept
index lists it, a kept referrer is it) is *blocked*: reported, never deleted. Plain tags go
before referrer tags (a run killed in between leaves referrers whose subject is gone, which the
next prune deletes; never a subject without its signature by our doing).

The limit (`prune_max`: a count, or a percentage of the target's tags; default 50%) is checked
on every deletion `decide` finds, blocked ones included: a prune over it deletes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ..oci.referrers import is_referrer_tag
from ..values.prunelimit import DEFAULT_LIMIT, PruneLimit

#: why a tag is deleted
NOT_SELECTED = "not in the rule's selection"
SUBJECT_GONE = "referrer tag whose subject is gone"

__all__ = ["DEFAULT_LIMIT", "NOT_SELECTED", "SUBJECT_GONE", "Deletion", "PruneDecision",
           "PruneLimit", "decide", "subject_of"]


def subject_of(tag: str) -> str | None:
    """The digest a referrer tag belongs to ("sha256-<hex>.sig" -> "sha256:<hex>")."""
    if not is_referrer_tag(tag):
        return None
    return "sha256:" + tag[len("sha256-"):len("sha256-") + 64]


@dataclass(frozen=True, slots=True)
class Deletion:
    tag: str
    digest: str
    reason: str


@dataclass(frozen=True, slots=True)
class PruneDecision:
    #: every tag to delete, plain tags first, then referrer tags
    deletions: tuple[Deletion, ...]
    #: deletions that deleting by digest would take kept content with: tag -> why
    blocked: Mapping[str, str]
    #: how many target tags were considered (the base of a percentage limit)
    total: int
    limit: PruneLimit
    #: a blocked tag -> a kept tag on the same digest (to check after deleting it by name)
    siblings: Mapping[str, str] = field(default_factory=dict)

    @property
    def within_limit(self) -> bool:
        return self.limit.allows(len(self.deletions), self.total)

    def by_digest(self) -> dict[str, tuple[str, ...]]:
        """The deletions not blocked, grouped by the digest one DELETE removes them with."""
        groups: dict[str, list[str]] = {}
        for d in self.deletions:
            if d.tag not in self.blocked:
                groups.setdefault(d.digest, []).append(d.tag)
        return {digest: tuple(tags) for digest, tags in groups.items()}

    def limit_message(self) -> str:
        return (f"prune stopped: it would delete {len(self.deletions)} of {self.total} target"
                f" tags, over prune_max {self.limit}; nothing deleted (check the source and the"
                " filters, then raise prune_max or run once with --force-prune)")


def decide(
    target: Mapping[str, str],
    kept: Collection[str],
    children: Mapping[str, Collection[str]],
    limit: PruneLimit = DEFAULT_LIMIT,
) -> PruneDecision:
    """The prune of one target repository.

    `target`: its tags and the digests they point at; `kept`: the rule's selection (tag names);
    `children`: digest -> the manifests an index lists (only kept indexes need be given).
    """
    keep = {tag for tag in target if tag in kept}
    protected = _closure({target[tag] for tag in keep}, children)
    referrers = {tag: subject for tag in target if tag not in keep
                 if (subject := subject_of(tag)) is not None}
    changed = True
    while changed:  # a referrer may itself be the subject of another (a signed attestation)
        changed = False
        for tag, subject in referrers.items():
            if tag not in keep and subject in protected:
                keep.add(tag)
                protected |= _closure({target[tag]}, children)
                changed = True
    plain = [Deletion(t, target[t], NOT_SELECTED) for t in target
             if t not in keep and t not in referrers]
    gone = [Deletion(t, target[t], SUBJECT_GONE) for t in target
            if t not in keep and t in referrers]
    deletions = tuple(plain + gone)
    blocked = {d.tag: _why_blocked(d.digest, target, keep) for d in deletions
               if d.digest in protected}
    siblings = {d.tag: min(t for t in keep if target[t] == d.digest) for d in deletions
                if d.tag in blocked and any(target[t] == d.digest for t in keep)}
    return PruneDecision(deletions, blocked, len(target), limit, siblings)


def _closure(digests: set[str], children: Mapping[str, Collection[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(digests)
    while todo:
        digest = todo.pop()
        if digest not in seen:
            seen.add(digest)
            todo.extend(children.get(digest, ()))
    return seen


def _why_blocked(digest: str, target: Mapping[str, str], keep: set[str]) -> str:
    sharing = sorted(t for t in keep if target[t] == digest)
    if sharing:
        return (f"not deleted: it points at {digest} like the kept tag '{sharing[0]}', and this"
                " registry deletes only by digest (which would remove both)")
    return (f"not deleted: {digest} is part of a kept image, and this registry deletes only by"
            " digest")
