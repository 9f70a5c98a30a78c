"""Copying one tag, in the order that keeps every target tag whole.

Blobs first, then child manifests by digest (a nested index after its own children, at any
depth up to MAX_INDEX_DEPTH), then the index or image under the tag. A tag is written last and
only after everything it points at is present, so a run killed at any instant leaves each target
tag either as it was or complete. What a tag becomes depends only on the source and the rule,
never on which tag of the run reached a shared nested index first. Referrers follow afterwards
(engine/referrers.py, through the `Follower`). Every manifest PUT goes through `put`: no other
PUT of the run writes that manifest or one it names meanwhile (distribution rewrites a
manifest's link on each PUT, and an index PUT reads its children's: BlobMover.writing).

Whether a tag is copied at all is decided by engine/plan.py from HEADs (and what memory and the
target's own index say), the same decision for the copy and for the dry run (`plan_tag`); this
module gathers those facts and does the I/O the decision calls for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Protocol

import trio

from ..base.errors import (
    NotFoundError,
    RegsyncError,
    RemoteServerError,
    UnsupportedError,
    first_regsync_error,
)
from ..oci.digest import DigestVerifier, read_hashed, sha256_digest
from ..oci.manifest import (
    ImageManifest,
    IndexManifest,
    describe_platforms,
    image_platform,
    is_describer,
    parse_manifest,
    select_platforms,
)
from ..oci.types import (
    INDEX_TYPES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    RawManifest,
)
from .blobs import BlobMover
from .events import Outcome, TagResult
from .plan import (
    NOT_SELECTED,
    SOURCE_DIGEST_ANNOTATION,
    Action,
    PlatformFilter,
    ReferrersPlanned,
    TagFacts,
    TagPlan,
    decide,
    failed,
    follows_referrers,
    maybe_rewritten,
    planned,
    recorded_source,
)
from .platform_memory import PlatformMemory
from .side import Side
from .throughput import too_slow, under_floor

#: indexes inside indexes, at most this deep below the tag's own (real builders nest one level)
MAX_INDEX_DEPTH = 4


@asynccontextmanager
async def together() -> AsyncIterator[trio.Nursery]:
    """A nursery that fails with its first RegsyncError: a tag reports one reason, not a group.

    Anything else (a bug, cancellation) propagates unchanged.
    """
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        first = first_regsync_error(group)
        if first is not None:
            raise first from None
        raise


class Follower(Protocol):
    """What follows a tag the copier copied or found unchanged: its referrers
    (engine/referrers.py). Returns how many referrer manifests it copied (and counts them)."""

    async def follow(self, tag: str, digest: str, media_type: str) -> int: ...

    async def plan(
        self, src: Descriptor, dst: Descriptor | None, unchanged: bool
    ) -> ReferrersPlanned:
        """What a run would do with the referrers of a tag (source `src`, target `dst`)."""
        ...


class TagCopier:
    """Copies the tags of one rule; shares the run's BlobMover with every other rule."""

    def __init__(
        self,
        *,
        rule: str,
        source: Side,
        target: Side,
        platforms: PlatformFilter,
        blobs: BlobMover,
        log: Callable[[str, str], None],
        memory: PlatformMemory,
        referrers: Follower | None = None,
    ) -> None:
        self.rule = rule
        self.referrers = referrers
        self.source = source
        self.target = target
        self.platforms = platforms
        self._blobs = blobs
        self._memory = memory
        self._log = log

    async def copy_tag(self, tag: str) -> TagResult:
        """Copy one tag; every failure becomes a result, never an exception (cancellation aside)."""
        try:
            result, media_type = await self._copy_tag(tag)
        except RegsyncError as exc:
            return TagResult(
                self.rule, tag, Outcome.FAILED, reason=str(exc), error_kind=exc.kind
            )
        followed = result.outcome is Outcome.COPIED or result.reason == "unchanged"
        if self.referrers is None or not followed:
            return result
        try:
            await self.referrers.follow(tag, result.digest, media_type)
        except RegsyncError as exc:  # the tag is whole; a retry copies what is missing
            return replace(result, outcome=Outcome.FAILED, error_kind=exc.kind,
                           reason=f"copied, but not all of its referrers: {exc}")
        return result

    async def plan_tag(self, tag: str) -> TagPlan:
        """What `copy_tag` would do, from HEADs alone (plus one target GET for rewritten indexes)."""
        try:
            facts = await self._facts(tag)
        except RegsyncError as exc:
            return failed(tag, f"{exc.kind}: {exc}")
        action = decide(facts, self.platforms)
        referrers = ReferrersPlanned()
        if self.referrers is not None and follows_referrers(action):
            try:
                referrers = await self.referrers.plan(
                    facts.source, facts.target, action is Action.SKIP_UNCHANGED)
            except RegsyncError as exc:
                return failed(tag, f"referrers: {exc.kind}: {exc}")
        return planned(tag, action, facts, referrers)

    async def _facts(self, tag: str) -> TagFacts:
        """What `decide` needs: both HEADs, the platform memory and, only for a target index
        that may be our rewrite, what it records (one target GET)."""
        src, dst = await self._heads(tag)
        recorded: str | None = None
        ours = maybe_rewritten(src, dst, self.platforms)
        if ours is not None:
            manifest = await self.target.registry.get_manifest(self.target.repository, ours.digest)
            recorded = recorded_source(manifest.raw)
        remembered = self._memory.get(src.digest) if self.platforms else None
        return TagFacts(src, dst, recorded, remembered)

    async def _heads(self, tag: str) -> tuple[Descriptor, Descriptor | None]:
        """Both sides at once: on a re-run this is all the work a tag costs."""
        heads: list[Descriptor | None] = [None, None]

        async def head(index: int, side: Side) -> None:
            heads[index] = await side.registry.head_manifest(side.repository, tag)

        async with together() as nursery:
            nursery.start_soon(head, 0, self.source)
            nursery.start_soon(head, 1, self.target)
        src, dst = heads
        if src is None:
            raise NotFoundError(
                f"tag {tag!r} disappeared from {self.source.repository!r} during the run",
                registry=self.source.registry.name,
            )
        return src, dst

    async def _copy_tag(self, tag: str) -> tuple[TagResult, str]:
        """The result, and the media type of what the target tag now points at."""
        facts = await self._facts(tag)
        action, src, dst = decide(facts, self.platforms), facts.source, facts.target
        if action is Action.SKIP_UNCHANGED and dst is not None:
            return TagResult(self.rule, tag, Outcome.SKIPPED, digest=dst.digest,
                             reason="unchanged"), dst.media_type
        if action is Action.SKIP_PLATFORM:  # learnt on an earlier run: no GET this time
            return TagResult(self.rule, tag, Outcome.SKIPPED, reason=NOT_SELECTED), ""
        manifest = await self.source.registry.get_manifest(self.source.repository, src.digest)
        parsed = parse_manifest(manifest, registry=self.source.registry.name)
        if isinstance(parsed, IndexManifest):
            return await self._copy_index(tag, manifest, parsed), manifest.media_type
        config: bytes | None = None  # read to learn the platform: not read twice
        if self.platforms:
            config = await self._read_config(parsed)
            if not self._image_wanted(manifest.digest, config):
                return TagResult(self.rule, tag, Outcome.SKIPPED, reason=NOT_SELECTED), ""
        await self._copy_image(parsed, config)
        await self.put(tag, manifest)
        return TagResult(self.rule, tag, Outcome.COPIED, digest=manifest.digest), parsed.media_type

    async def ensure_manifest(self, child: Descriptor) -> bool:
        """`child` at the target by digest with everything it needs, as this copier's filter
        says (a referrer copier has none); True when it was not there before."""
        if await self.target.registry.head_manifest(self.target.repository, child.digest):
            return False
        if child.media_type in INDEX_TYPES:
            await self._copy_nested(child, 1, [])
        else:
            await self._copy_child(child)
        return True

    async def put_whole(self, manifest: RawManifest, reference: str) -> None:
        """Everything `manifest` needs, then `manifest` itself under `reference`, unfiltered
        (for a copier without a platform filter: a referrer is copied as it is)."""
        parsed = parse_manifest(manifest, registry=self.source.registry.name)
        if isinstance(parsed, IndexManifest):
            walked = await self._walk_index(manifest, parsed, 0, [])
            manifest = walked or manifest
        else:
            await self._copy_image(parsed)
        await self.put(reference, manifest)

    async def _copy_index(self, tag: str, manifest: RawManifest, index: IndexManifest) -> TagResult:
        dropped: list[str] = []
        walked = await self._walk_index(manifest, index, 0, dropped)
        if walked is None:
            wanted = ", ".join([*self.platforms.architectures, *map(str, self.platforms.platforms)])
            raise UnsupportedError(
                f"no platform of {tag!r} matches {wanted}; the index has: "
                f"{describe_platforms(index)}",
                registry=self.source.registry.name,
            )
        note = ""
        if walked.digest != manifest.digest:
            shown = ", ".join(dict.fromkeys(dropped)) or "nothing"
            note = f"index rewritten without {shown}: digest {walked.digest}"
            self._log("info", f"{tag}: {note}")
        await self.put(tag, walked)
        return TagResult(self.rule, tag, Outcome.COPIED, digest=walked.digest, reason=note)

    async def _walk_index(
        self, manifest: RawManifest, index: IndexManifest, depth: int, dropped: list[str]
    ) -> RawManifest | None:
        """Copy what `index` keeps, children before parents (nested indexes first, recursively);
        the index to push (rewritten when the filter dropped or replaced a child), or None when
        nothing in it is wanted. Deterministic: the same source gives the same bytes, whichever
        tag reaches a shared nested index first."""
        nests = [d for d in index.manifests if d.media_type in INDEX_TYPES and not is_describer(d)]
        if nests and depth >= MAX_INDEX_DEPTH:
            raise UnsupportedError(
                f"index {manifest.digest} nests indexes deeper than {MAX_INDEX_DEPTH} levels",
                registry=self.source.registry.name,
            )
        resolved: dict[str, Descriptor | None] = {}

        async def nest(child: Descriptor) -> None:
            resolved[child.digest] = await self._copy_nested(child, depth + 1, dropped)

        async with together() as nursery:
            for child in dict.fromkeys(nests):
                nursery.start_soon(nest, child)
        choice = select_platforms(
            index,
            manifest.raw,
            architectures=self.platforms.architectures,
            platforms=self.platforms.platforms,
            annotations={SOURCE_DIGEST_ANNOTATION: manifest.digest},
            nested=resolved,
        )
        if not choice.kept:
            dropped.extend(describe_platforms(index).split(", "))
            return None
        dropped.extend(str(d.platform) for d in choice.dropped
                       if d.platform is not None and not is_describer(d))
        copied = {d.digest for d in resolved.values() if d is not None}
        async with together() as nursery:
            for child in choice.kept:
                if child.digest not in copied:
                    nursery.start_soon(self._copy_child, child)
        if choice.raw is None:
            return manifest
        return RawManifest(choice.raw, manifest.media_type, sha256_digest(choice.raw))

    async def _copy_nested(
        self, child: Descriptor, depth: int, dropped: list[str]
    ) -> Descriptor | None:
        """A nested index copied by digest (its children first); its descriptor in the parent
        (a new digest when rewritten), or None when nothing in it is wanted."""
        # read from the source even when the target has it: what the filter makes of it, and
        # whether it nests too deep, must not depend on what another tag copied first
        manifest = await self.source.registry.get_manifest(self.source.repository, child.digest)
        parsed = parse_manifest(manifest, registry=self.source.registry.name)
        if not isinstance(parsed, IndexManifest):
            raise RemoteServerError(
                f"entry {child.digest} is declared an index but is an image manifest",
                registry=self.source.registry.name,
            )
        walked = await self._walk_index(manifest, parsed, depth, dropped)
        if walked is None:
            return None
        await self.put(walked.digest, walked, if_absent=True)  # no PUT twice: push events
        return replace(child, digest=walked.digest, size=len(walked.raw))

    def placing(self, reference: str) -> AbstractAsyncContextManager[None]:
        """The run-wide lock of placing one manifest (or a referrers tag) at this copier's
        target: held across the work, never while taking another digest's (BlobMover)."""
        return self._blobs.manifest_lock(self.target.registry.name, self.target.repository,
                                         reference)

    async def put(self, reference: str, manifest: RawManifest, *, if_absent: bool = False) -> None:
        """PUT `manifest` under `reference` at the target while no other PUT of the run writes
        it or a manifest it names, in this repository (BlobMover.writing), whatever order the
        run's tags take; `if_absent`: not when the target has it by digest already."""
        target, repo = self.target.registry, self.target.repository
        names = [manifest.digest, *self._names(manifest)]
        async with self._blobs.writing(target.name, repo, names):
            if if_absent and await target.head_manifest(repo, manifest.digest) is not None:
                return
            await target.put_manifest(repo, reference, manifest)

    def _names(self, manifest: RawManifest) -> list[str]:
        """The manifests an index names (what its PUT checks at the target); none for others."""
        if manifest.media_type not in INDEX_TYPES:
            return []
        parsed = parse_manifest(manifest, registry=self.source.registry.name)
        return [d.digest for d in parsed.manifests] if isinstance(parsed, IndexManifest) else []

    async def _copy_child(self, child: Descriptor) -> None:
        async with self.placing(child.digest):  # another tag placing it: wait, then HEAD
            await self._place_child(child)

    async def _place_child(self, child: Descriptor) -> None:
        target, repo = self.target.registry, self.target.repository
        if await target.head_manifest(repo, child.digest) is not None:
            return  # a registry accepts a manifest only once its blobs are there
        manifest = await self.source.registry.get_manifest(self.source.repository, child.digest)
        parsed = parse_manifest(manifest, registry=self.source.registry.name)
        if isinstance(parsed, IndexManifest):
            raise RemoteServerError(
                f"entry {child.digest} is declared {child.media_type!r} but is an index",
                registry=self.source.registry.name,
            )
        await self._copy_image(parsed)
        await self.put(child.digest, manifest)

    async def _copy_image(self, image: ImageManifest, config: bytes | None = None) -> None:
        async with together() as nursery:
            for blob in image.blobs:
                known = config if blob.digest == image.config.digest else None
                nursery.start_soon(self._ensure_blob, blob, known)

    async def _ensure_blob(self, blob: Descriptor, body: bytes | None) -> None:
        await self._blobs.ensure(blob, source=self.source, target=self.target, body=body)

    async def _read_config(self, image: ImageManifest) -> bytes:
        """A single-platform image's (small) config blob, verified: it says the platform."""
        config = image.config
        if config.size > MAX_MANIFEST_BYTES:
            raise UnsupportedError(f"image config {config.digest} is {config.size} bytes; at most "
                                   f"{MAX_MANIFEST_BYTES} are read to learn a platform",
                                   registry=self.source.registry.name)
        verifier = DigestVerifier.for_digest(config.digest)
        source = self.source.registry
        with under_floor(self._blobs.floor,
                         lambda rate: too_slow(source.name, f"image config {config.digest}",
                                               rate)) as meter:
            async with source.open_blob(self.source.repository, config.digest) as blob:
                body = await read_hashed(meter.metered(blob.chunks()), verifier, config.size)
        verifier.verify(config.digest, config.size, registry=self.source.registry.name)
        return body

    def _image_wanted(self, digest: str, config: bytes) -> bool:
        platform = image_platform(config)
        if platform is None:
            return True
        self._memory.remember(digest, platform)
        return self.platforms.wants(platform)
