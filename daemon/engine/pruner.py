"""A prune's I/O: survey the target repository, then delete what prune.py decided.

The survey costs one tag listing and one HEAD per target tag; only when something is to be
deleted are the kept indexes read (one GET each, nested ones too), since a referrer's subject
or a digest's owner may be a child of one. Nothing is written before the whole decision is
known and within its limit.

Deleting: by tag name first (OCI 1.1: only that tag goes). A registry that answers the tag
form with "not here" (distribution 2.8: 400 DIGEST_INVALID) is remembered for the run, and the
rest goes by digest, one DELETE per digest, skipping the blocked ones (reported). A registry
that refuses deletes altogether raises DeleteRefusedError on its first digest DELETE.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping

import trio

from ..base.errors import NotFoundError, PruneStoppedError
from ..base.safetext import escape_controls
from ..oci.manifest import IndexManifest, parse_manifest
from ..oci.reference import split_tags
from ..oci.types import INDEX_TYPES, Descriptor
from ..values.prunelimit import PruneLimit
from .prune import Deletion, PruneDecision, decide
from .side import Side

#: HEADs of the survey in flight at once
HEADS_IN_FLIGHT = 16
#: how deep nested indexes are read for their children (the copy's own bound)
MAX_DEPTH = 4

Log = Callable[[str, str], None]


class Pruner:
    """The prune of one target repository. `tag_deletes` is shared by a run: registry name ->
    whether it deletes tags by name (absent: not known yet)."""

    def __init__(self, target: Side, *, log: Log, tag_deletes: MutableMapping[str, bool]) -> None:
        self._target = target
        self._log = log
        self._tag_deletes = tag_deletes

    async def survey(self, kept: Collection[str], limit: PruneLimit, *,
                     planned: Mapping[str, str] | None = None) -> PruneDecision:
        """What pruning the target would delete (reads only). `planned`: tags a dry run would
        copy, at the digests they would have (a run surveys after its copies)."""
        kept = frozenset(kept)  # `tag in kept` for every target tag, twice
        registry, repository = self._target.registry, self._target.repository
        try:
            listed = await registry.list_tags(repository)
        except NotFoundError:  # no such repository on the target yet: nothing to prune
            listed = []
        valid, invalid = split_tags(listed)
        if invalid:
            self._log("warning", f"{len(invalid)} target names are not valid tags: never pruned")
        heads: dict[str, Descriptor] = {}
        limiter = trio.CapacityLimiter(HEADS_IN_FLIGHT)

        async def head(tag: str) -> None:
            async with limiter:
                found = await registry.head_manifest(repository, tag)
            if found is not None:  # gone since the listing: nothing to delete
                heads[tag] = found

        async with trio.open_nursery() as nursery:
            for tag in valid:
                nursery.start_soon(head, tag)
        digests = {tag: heads[tag].digest for tag in valid if tag in heads}
        digests.update(planned or {})
        decision = decide(digests, kept, {}, limit)
        if not decision.deletions:
            return decision
        roots = {heads[t].digest for t in heads
                 if t in kept and t in digests and heads[t].media_type in INDEX_TYPES}
        return decide(digests, kept, await self._children(roots), limit)

    async def _children(self, roots: set[str]) -> dict[str, tuple[str, ...]]:
        """digest -> child digests of each kept index, nested indexes walked too."""
        children: dict[str, tuple[str, ...]] = {}
        level = roots
        for _depth in range(MAX_DEPTH):
            nested: set[str] = set()
            for digest in sorted(level - children.keys()):
                raw = await self._target.registry.get_manifest(self._target.repository, digest)
                parsed = parse_manifest(raw, registry=self._target.registry.name)
                if isinstance(parsed, IndexManifest):
                    children[digest] = tuple(d.digest for d in parsed.manifests)
                    nested |= {d.digest for d in parsed.manifests if d.media_type in INDEX_TYPES}
            level = nested
        return children

    async def apply(
        self, decision: PruneDecision, *, force: bool, on_deleted: Callable[[Deletion], None]
    ) -> None:
        """Delete the decision's tags (after every copy of the run).

        Raises:
            PruneStoppedError: over the limit and not forced: nothing deleted.
            DeleteRefusedError: the registry refuses deletes (the ones before it stay done).
        """
        if not decision.deletions:
            return
        if not decision.within_limit:
            if not force:
                raise PruneStoppedError(decision.limit_message())
            self._log("warning", f"prune forced past prune_max {decision.limit}: deleting"
                      f" {len(decision.deletions)} of {decision.total} target tags")
        remaining = list(decision.deletions)
        registry, repository = self._target.registry, self._target.repository
        while remaining and self._tag_deletes.get(registry.name, True):
            deletion = remaining[0]
            try:
                deleted = gone = await registry.delete_tag(repository, deletion.tag)
            except NotFoundError:
                # gone already, or a registry that reads the reference as a digest only: ask
                deleted, gone = False, await registry.head_manifest(repository, deletion.tag) is None
                if gone:
                    self._log("info", f"prune: {deletion.tag} was gone already")
            if deleted:
                on_deleted(deletion)
            if gone:
                remaining.pop(0)
            self._tag_deletes[registry.name] = gone and (
                not deleted or await self._sibling_kept(decision, deletion))
        if remaining:
            await self._by_digest(decision, remaining, on_deleted)

    async def _sibling_kept(self, decision: PruneDecision, deletion: Deletion) -> bool:
        """After a tag DELETE: does the kept tag on the same digest still stand? A registry that
        took the manifest with it does not delete tags by name, whatever it answered: the rest
        goes by digest (the next run copies the lost tag again)."""
        sibling = decision.siblings.get(deletion.tag)
        if sibling is None:
            return True
        if await self._target.registry.head_manifest(self._target.repository, sibling):
            return True
        self._log("error", f"prune: deleting the tag {escape_controls(deletion.tag)} removed the"
                  f" kept tag {escape_controls(sibling)} too (the registry deletes the manifest,"
                  " not the tag): the rest is deleted by digest, and the next run copies"
                  f" {escape_controls(sibling)} again")
        return False

    async def _by_digest(self, decision: PruneDecision, remaining: list[Deletion],
                         on_deleted: Callable[[Deletion], None]) -> None:
        registry, repository = self._target.registry, self._target.repository
        left = {d.tag for d in remaining}
        for deletion in remaining:
            if deletion.tag in decision.blocked:
                self._log("warning", f"prune: {escape_controls(deletion.tag)}"
                          f" {decision.blocked[deletion.tag]}")
        for digest, tags in decision.by_digest().items():
            tags = tuple(t for t in tags if t in left)
            if not tags:
                continue
            try:
                await registry.delete_manifest(repository, digest)
            except NotFoundError:
                self._log("info", f"prune: {digest} was gone already")
                continue
            reasons = {d.tag: d.reason for d in remaining}
            for tag in tags:
                on_deleted(Deletion(tag, digest, reasons[tag]))
