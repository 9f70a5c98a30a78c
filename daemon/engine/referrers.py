"""Referrers follow their subjects: signatures, SBOMs and attestations of what a rule copies.

For every manifest a tag reaches at the target (the tag's own, and every child of its index at
any depth), the referrers on the source are found: through the OCI 1.1 Referrers API where the
source has it (one request per subject per run), else the referrers schema's fallback index
(`sha256-<hex>`), and cosign's `sha256-<hex>.sig`, `.att` and `.sbom` tags (oci/referrers.py).
Each is copied whole, without the rule's platform filter, children before parents: the referrer
manifests by digest (a target with the API indexes them by their `subject`), then the fallback
index (merged with what the target's already lists, never dropping an entry), then the tag.
Then the referrers' own referrers (a signature of an SBOM), cycle-safe and depth-capped. The
tag filters do not apply: a `.sig` tag follows its subject whatever `include` says, and the
referrer tags of subjects the rule did not select stay behind. `artifact_types` chooses which
referrers follow (an entry's `artifactType`; a cosign tag's kind, oci/referrers.py).

Cost of a re-run with nothing new: a referrer tag the run's own tag listing does not hold is
never requested; those it holds are HEADed on both sides; a subject is followed once per run
however many tags reach it; where a fallback index exists, one GET of the target's copy (its
entries are the next subjects); never a GET on the source. A tag whose index was rewritten by a
platform filter has a digest the source never had: the source's referrers of the original index
describe content the target will not have, so they are not copied, and the log says so once
per tag. `plan` walks the same way without writing (referrer_plan.py: the subjects of a tag
that is not copied yet come from the source's index).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..base.errors import NotFoundError, RemoteServerError
from ..oci.digest import sha256_digest
from ..oci.manifest import IndexManifest, parse_manifest
from ..oci.referrers import (
    add_entries,
    entry_type,
    fallback_entries,
    fallback_tag,
    is_referrer_tag,
    merge_fallback,
    merged_from,
    referrer_tags,
    tag_artifact_type,
    wanted_type,
)
from ..oci.types import OCI_INDEX, Descriptor, RawManifest
from .copy import TagCopier, together
from .plan import PlatformFilter, ReferrersPlanned
from .referrer_plan import MAX_REFERRER_DEPTH, source_subjects, target_subjects


@dataclass(slots=True)
class _Tally:
    """Referrer manifests copied (or, planning, that a run would copy)."""

    dry: bool
    count: int = 0


class ReferrerFollower:
    """The `Follower` of one rule: copies through an unfiltered copier of the same sides."""

    def __init__(
        self,
        copier: TagCopier,
        log: Callable[[str, str], None],
        on_copied: Callable[[str, int], None] = lambda tag, count: None,
        *,
        artifact_types: tuple[str, ...] = (),
        platforms: PlatformFilter | None = None,
        api_known: dict[str, bool] | None = None,
    ) -> None:
        self._copier = copier
        self._on_copied = on_copied
        self._types = artifact_types
        self._platforms = platforms or PlatformFilter()
        #: the source's Referrers API answers, one request per subject per run
        self._api: dict[str, tuple[RawManifest, IndexManifest] | None] = {}
        self._target_api: bool | None = None
        #: whether each source registry has the Referrers API, shared by a run's followers (a
        #: glob's thousand repositories ask once, not once each)
        self._api_known = {} if api_known is None else api_known
        #: the referrer tags of the source's listing this run (None: not listed, HEAD them all)
        self._listed: frozenset[str] | None = None
        #: subjects whose referrers are current at the target (or counted, planning) this run
        self._done: set[str] = set()
        self._planned: set[str] = set()
        self._source = copier.source
        self._target = copier.target
        self._log = log

    def listed(self, tags: Iterable[str]) -> None:
        """The source's tags as the run listed them: a referrer tag not among them is absent,
        known without a request (a referrer tagged after the listing follows on the next run)."""
        self._listed = frozenset(t for t in tags if is_referrer_tag(t))

    async def follow(self, tag: str, digest: str, media_type: str) -> int:
        """Copy the referrers of what `tag` reaches at the target; how many were copied."""
        subjects: list[str] = []
        rewritten = await target_subjects(self._source, self._target, digest, media_type,
                                          subjects)
        if rewritten is not None:
            found = await self._present_on_source(rewritten)
            if found:
                self._log("info", f"{tag}: {found} referrer tags of the index {rewritten} not "
                          "copied: the index was rewritten by the platform filter")
        tally = _Tally(dry=False)
        await self._walk(subjects, tally, self._done)
        if tally.count:
            self._on_copied(tag, tally.count)
        return tally.count

    async def plan(
        self, src: Descriptor, dst: Descriptor | None, unchanged: bool
    ) -> ReferrersPlanned:
        """How many referrer manifests a run would copy for a tag (source `src`, target `dst`):
        those of the manifests it reaches, its index's children included, found as the run
        finds them (tags, the Referrers API) and absent at the target; and how many referrer
        tags of its index stay behind because the platform filter rewrites the index."""
        subjects: list[str] = []
        if unchanged and dst is not None:
            rewritten = await target_subjects(self._source, self._target, dst.digest,
                                              dst.media_type, subjects)
        else:
            rewritten = await source_subjects(self._source, src, self._platforms, subjects)
        tally = _Tally(dry=True)
        await self._walk(subjects, tally, self._planned)
        behind = 0 if rewritten is None else await self._present_on_source(rewritten)
        return ReferrersPlanned(tally.count, behind)

    async def _walk(self, subjects: list[str], tally: _Tally, done: set[str]) -> None:
        seen: set[str] = set()
        async with together() as nursery:
            for subject in dict.fromkeys(subjects):
                nursery.start_soon(self._follow, subject, seen, 0, tally, done)

    def _candidates(self, subject: str, *, api: bool) -> tuple[str, ...]:
        """The referrer tags of `subject` worth a request: the fallback tag unless the source's
        API answered, cosign's of a chosen type, and only those the listing holds."""
        tags = referrer_tags(subject)[1 if api else 0:]
        if self._types:
            tags = tuple(t for t in tags if (kind := tag_artifact_type(t)) is None
                         or wanted_type(kind, self._types))
        if self._listed is not None:
            tags = tuple(t for t in tags if t in self._listed)
        return tags

    async def _present_on_source(self, digest: str) -> int:
        registry, repo = self._source.registry, self._source.repository
        candidates = self._candidates(digest, api=False)
        heads = [await registry.head_manifest(repo, t) for t in candidates]
        return sum(1 for h in heads if h is not None)

    async def _follow(
        self, subject: str, seen: set[str], depth: int, tally: _Tally, done: set[str]
    ) -> None:
        if (subject in seen or subject in done or depth > MAX_REFERRER_DEPTH
                or fallback_tag(subject) is None):
            return
        seen.add(subject)
        found: list[str] = []

        async def one(tag: str) -> None:
            found.extend(await self._sync_tag(tag, tally))

        api = await self._source_api(subject)
        if api is not None:  # the API is the source's truth; cosign's tags are still looked up
            found.extend(await self._copy_listed(subject, api, tally))
        async with together() as nursery:
            for tag in self._candidates(subject, api=api is not None):
                nursery.start_soon(one, tag)
        for referrer in dict.fromkeys(found):
            await self._follow(referrer, seen, depth + 1, tally, done)
        if depth == 0:  # all of it current (a failure is met again by each tag), to full depth
            done.add(subject)  # (deeper, the cap cut it short: another tag may reach it higher)

    async def _source_api(self, subject: str) -> tuple[RawManifest, IndexManifest] | None:
        """The source's API answer; asked once per subject, and not at all once the source
        said it has no API (such a registry answers 404 for every digest)."""
        registry = self._source.registry
        if self._api_known.get(registry.name) is False:
            return None
        if subject not in self._api:
            answer = await registry.list_referrers(self._source.repository, subject)
            self._api[subject] = answer
            # a registry with the API never answers 404 to it (OCI 1.1), so one answer proves
            # it: a later 404 (a non-conforming registry) does not turn that back, mid-run
            if answer is not None or registry.name not in self._api_known:
                self._api_known[registry.name] = answer is not None
        return self._api[subject]

    def _wanted(self, raw: bytes) -> dict[str, dict[str, object]]:
        """The entries of an index of referrers whose artifact type the rule follows."""
        return {str(e["digest"]): e for e in fallback_entries(raw)
                if wanted_type(entry_type(e), self._types)}

    async def _place(self, entries: Iterable[Descriptor], tally: _Tally) -> set[str]:
        """Each referrer at the target by digest (planning: counted when absent); the digests
        the source does not have (a stale index lists what was deleted)."""
        gone: set[str] = set()
        target = self._target

        async def one(entry: Descriptor) -> None:
            try:
                if tally.dry:  # (awaited first: `count +=` would read it before the await)
                    there = await target.registry.head_manifest(target.repository, entry.digest)
                    tally.count += there is None
                elif await self._copier.ensure_manifest(entry):
                    tally.count += 1
            except NotFoundError as exc:
                if exc.registry != self._source.registry.name:
                    raise
                gone.add(entry.digest)

        async with together() as nursery:
            for entry in dict.fromkeys(entries):
                nursery.start_soon(one, entry)
        return gone

    async def _copy_listed(
        self, subject: str, api: tuple[RawManifest, IndexManifest], tally: _Tally
    ) -> list[str]:
        """The referrers the source's API lists, copied by digest (a registry with the API
        indexes them by their `subject` as they arrive); a target without the API gets them in
        its fallback index, merged with what it lists already."""
        raw, index = api
        wanted = self._wanted(raw.raw)
        entries = [d for d in index.manifests if d.digest in wanted]
        gone = await self._place(entries, tally)
        listed = [d.digest for d in entries if d.digest not in gone]
        target = self._target
        tag = fallback_tag(subject)
        if tally.dry or tag is None or not listed:
            return listed
        if self._target_api is None:
            answer = await target.registry.list_referrers(target.repository, subject)
            self._target_api = answer is not None
        if self._target_api:
            return listed
        async with self._copier.placing(tag):  # read, merge, write: one tag of the run at once
            dst = await target.registry.head_manifest(target.repository, tag)
            ours = None if dst is None else await target.registry.get_manifest(
                target.repository, dst.digest)
            merged = add_entries(ours.raw if ours else None, [wanted[d] for d in listed])
            if merged is not None:
                await self._copier.put(tag, RawManifest(merged, OCI_INDEX, sha256_digest(merged)))
        return listed

    async def _sync_tag(self, tag: str, tally: _Tally) -> list[str]:
        """Bring one referrer tag up to date; the digests of the referrers it names."""
        async with self._copier.placing(tag):  # read, merge, write: one tag of the run at once
            return await self._sync_tag_held(tag, tally)

    async def _sync_tag_held(self, tag: str, tally: _Tally) -> list[str]:
        source, target = self._source, self._target
        src = await source.registry.head_manifest(source.repository, tag)
        if src is None:
            return []
        dst = await target.registry.head_manifest(target.repository, tag)
        if tag_artifact_type(tag) is not None:  # cosign's: one manifest, copied under its tag
            if dst is None or dst.digest != src.digest:
                tally.count += 1
                if not tally.dry:
                    manifest = await source.registry.get_manifest(source.repository, src.digest)
                    await self._copier.put_whole(manifest, tag)
            return [src.digest]
        ours: RawManifest | None = None
        if dst is not None:
            ours = await target.registry.get_manifest(target.repository, dst.digest)
            if dst.digest == src.digest or merged_from(ours.raw, self._types) == src.digest:
                return list(self._wanted(ours.raw))
        return await self._copy_fallback(tag, src, ours, tally)

    async def _copy_fallback(
        self, tag: str, src: Descriptor, ours: RawManifest | None, tally: _Tally
    ) -> list[str]:
        source = self._source
        theirs = await source.registry.get_manifest(source.repository, src.digest)
        index = parse_manifest(theirs, registry=source.registry.name)
        if not isinstance(index, IndexManifest):
            raise RemoteServerError(f"referrers tag {tag!r} is not an index",
                                    registry=source.registry.name)
        wanted = self._wanted(theirs.raw)
        gone = await self._place([d for d in index.manifests if d.digest in wanted], tally)
        if tally.dry:
            return [d for d in wanted if d not in gone]
        if gone:
            self._log("warning", f"referrers tag {tag!r} lists {len(gone)} manifests the "
                      "source does not have: left out")
        left_out = {d.digest for d in index.manifests if d.digest not in wanted}
        merged = merge_fallback(theirs.raw, theirs.digest, ours.raw if ours else None,
                                gone=frozenset(gone | left_out), types=self._types)
        manifest = theirs if merged == theirs.raw else RawManifest(
            merged, theirs.media_type, sha256_digest(merged))
        await self._copier.put(tag, manifest)
        return [str(e["digest"]) for e in fallback_entries(merged)
                if wanted_type(entry_type(e), self._types)]
