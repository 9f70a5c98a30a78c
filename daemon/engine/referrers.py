"""Referrers follow their subjects: signatures, SBOMs and attestations of what a rule copies.

For every manifest a tag reaches at the target (the tag's own, and every child of its index at
any depth), the referrers on the source are found by tag: the referrers schema's fallback index
(`sha256-<hex>`) and cosign's `sha256-<hex>.sig`, `.att` and `.sbom` (registry/referrers.py).
Each is copied whole, without the rule's platform filter, children before parents: the referrer
manifests by digest, then the fallback index (merged with what the target's already lists, never
dropping an entry), then the tag. Then the referrers' own referrers (a signature of an SBOM),
cycle-safe and depth-capped. The tag filters do not apply: a `.sig` tag follows its subject
whatever `include` says, and the referrer tags of subjects the rule did not select stay behind.

Cost of a re-run with nothing new: per subject, HEADs of those of the four tags the source's tag
listing shows (`listed`: the run has just listed them; a tag it does not show is not asked for)
on both sides and, where a fallback index exists, one GET of the target's copy (its entries are
the next subjects); never a GET on the source. A tag whose index was rewritten by a platform filter has a digest the source
never had: the source's referrers of the original index describe content the target will not
have, so they are not copied, and the log says so once per tag.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import NotFoundError, RemoteServerError
from ..registry.digest import sha256_digest
from ..registry.jsondoc import parse_json
from ..registry.manifest import IndexManifest, parse_manifest
from ..registry.referrers import (
    add_entries,
    fallback_entries,
    fallback_tag,
    merge_fallback,
    merged_from,
    referrer_tags,
)
from ..registry.types import INDEX_TYPES, OCI_INDEX, Descriptor, RawManifest
from .copy import SOURCE_DIGEST_ANNOTATION, TagCopier, together

#: referrers of referrers, at most this deep (a signature of an SBOM of an image is 2)
MAX_REFERRER_DEPTH = 4


class ReferrerFollower:
    """The `Follower` of one rule: copies through an unfiltered copier of the same sides."""

    def __init__(
        self,
        copier: TagCopier,
        log: Callable[[str, str], None],
        on_copied: Callable[[str, int], None] = lambda tag, count: None,
        listed: frozenset[str] | None = None,
        api_known: dict[str, bool] | None = None,
    ) -> None:
        self._copier = copier
        #: the referrer-shaped tags of the source repository's listing (None: unknown, ask)
        self._listed = listed
        self._on_copied = on_copied
        #: the source's Referrers API answers, one request per subject per run
        self._api: dict[str, tuple[RawManifest, IndexManifest] | None] = {}
        self._target_api: bool | None = None
        #: whether each source registry has the Referrers API, shared by a run's followers (a
        #: glob's thousand repositories ask once, not once each)
        self._api_known = {} if api_known is None else api_known
        self._source = copier.source
        self._target = copier.target
        self._log = log

    async def follow(self, tag: str, digest: str, media_type: str) -> int:
        """Copy the referrers of what `tag` reaches at the target; how many were copied."""
        subjects: list[str] = []
        rewritten = await self._subjects(digest, media_type, subjects, 0)
        copied = [0]
        seen: set[str] = set()
        if rewritten is not None:
            found = await self._present_on_source(rewritten)
            if found:
                self._log("info", f"{tag}: {found} referrer tags of the index {rewritten} not "
                          "copied: the index was rewritten by the platform filter")
        async with together() as nursery:
            for subject in dict.fromkeys(subjects):
                nursery.start_soon(self._follow, subject, seen, 0, copied)
        if copied[0]:
            self._on_copied(tag, copied[0])
        return copied[0]

    async def plan(self, digest: str) -> int:
        """The referrer tags of `digest` itself (not of an index's children: they are known only
        from a GET) that a run would copy: present on the source, absent or different at the
        target. HEADs, and a target GET for a fallback index that differs (a merged one)."""
        source, target = self._source, self._target
        count = 0
        for tag in self._tags(digest):
            src = await source.registry.head_manifest(source.repository, tag)
            if src is None:
                continue
            dst = await target.registry.head_manifest(target.repository, tag)
            if dst is not None and dst.digest != src.digest and tag == fallback_tag(digest):
                ours = await target.registry.get_manifest(target.repository, dst.digest)
                count += merged_from(ours.raw) != src.digest
            else:
                count += dst is None or dst.digest != src.digest
        return count

    async def _subjects(
        self, digest: str, media_type: str, into: list[str], depth: int
    ) -> str | None:
        """Collect the digests whose referrers follow: `digest` unless it is a rewrite of ours,
        and the children of an index (read from the target's copy, never the source's). The
        source digest of a rewritten index, when `digest` is one."""
        if media_type not in INDEX_TYPES:
            into.append(digest)
            return None
        ours = await self._target.registry.get_manifest(self._target.repository, digest)
        parsed = parse_manifest(ours, registry=self._target.registry.name)
        source_digest = _rewritten_from(ours)
        if source_digest is not None and await self._source.registry.head_manifest(
            self._source.repository, digest
        ):
            source_digest = None  # the source's own bytes (a mirror of a mirror): not our rewrite
        if source_digest is None:
            into.append(digest)
        if isinstance(parsed, IndexManifest) and depth < MAX_REFERRER_DEPTH:
            for child in parsed.manifests:
                await self._subjects(child.digest, child.media_type, into, depth + 1)
        return source_digest

    async def _present_on_source(self, digest: str) -> int:
        registry, repo = self._source.registry, self._source.repository
        heads = [await registry.head_manifest(repo, t) for t in self._tags(digest)]
        return sum(1 for h in heads if h is not None)

    async def _follow(self, subject: str, seen: set[str], depth: int, copied: list[int]) -> None:
        if subject in seen or depth > MAX_REFERRER_DEPTH or fallback_tag(subject) is None:
            return
        seen.add(subject)
        found: list[str] = []

        async def one(tag: str) -> None:
            found.extend(await self._sync_tag(tag, copied, fallback=tag == referrers[0]))

        referrers = referrer_tags(subject)
        api = await self._source_api(subject)
        if api is not None:  # the API is the source's truth; cosign's tags are still looked up
            found.extend(await self._copy_listed(subject, api, copied))
            referrers = referrers[1:]
        async with together() as nursery:
            for tag in referrers:
                if self._listed is None or tag in self._listed:
                    nursery.start_soon(one, tag)
        for referrer in dict.fromkeys(found):
            await self._follow(referrer, seen, depth + 1, copied)

    def _tags(self, digest: str) -> list[str]:
        """The referrer tags of `digest` the source may have (all four when not listed)."""
        return [t for t in referrer_tags(digest) if self._listed is None or t in self._listed]

    async def _source_api(self, subject: str) -> tuple[RawManifest, IndexManifest] | None:
        """The source's API answer; asked once per subject, and not at all once the source
        said it has no API (such a registry answers 404 for every digest)."""
        registry = self._source.registry
        if self._api_known.get(registry.name) is False:
            return None
        if subject not in self._api:
            answer = await registry.list_referrers(self._source.repository, subject)
            self._api[subject] = answer
            self._api_known[registry.name] = answer is not None
        return self._api[subject]

    async def _copy_listed(
        self, subject: str, api: tuple[RawManifest, IndexManifest], copied: list[int]
    ) -> list[str]:
        """The referrers the source's API lists, copied by digest (a registry with the API
        indexes them by their `subject` as they arrive); a target without the API gets them in
        its fallback index, merged with what it lists already."""
        raw, index = api

        async def one(entry: Descriptor) -> None:
            if await self._copier.ensure_manifest(entry):
                copied[0] += 1

        async with together() as nursery:
            for entry in dict.fromkeys(index.manifests):
                nursery.start_soon(one, entry)
        target = self._target
        if self._target_api is None:
            answer = await target.registry.list_referrers(target.repository, subject)
            self._target_api = answer is not None
        tag = fallback_tag(subject)
        if self._target_api or tag is None or not index.manifests:
            return [d.digest for d in index.manifests]
        dst = await target.registry.head_manifest(target.repository, tag)
        ours = None if dst is None else await target.registry.get_manifest(
            target.repository, dst.digest)
        merged = add_entries(ours.raw if ours else None, fallback_entries(raw.raw))
        if merged is not None:
            await target.registry.put_manifest(target.repository, tag, RawManifest(
                merged, OCI_INDEX, sha256_digest(merged)))
        return [d.digest for d in index.manifests]

    async def _sync_tag(self, tag: str, copied: list[int], *, fallback: bool) -> list[str]:
        """Bring one referrer tag up to date; the digests of the referrers it names."""
        source, target = self._source, self._target
        src = await source.registry.head_manifest(source.repository, tag)
        if src is None:
            return []
        dst = await target.registry.head_manifest(target.repository, tag)
        if not fallback:
            if dst is None or dst.digest != src.digest:
                manifest = await source.registry.get_manifest(source.repository, src.digest)
                await self._copier.put_whole(manifest, tag)
                copied[0] += 1
            return [src.digest]
        ours: RawManifest | None = None
        if dst is not None:
            ours = await target.registry.get_manifest(target.repository, dst.digest)
            if dst.digest == src.digest or merged_from(ours.raw) == src.digest:
                return [str(e["digest"]) for e in fallback_entries(ours.raw)]
        return await self._copy_fallback(tag, src, ours, copied)

    async def _copy_fallback(
        self, tag: str, src: Descriptor, ours: RawManifest | None, copied: list[int]
    ) -> list[str]:
        source, target = self._source, self._target
        theirs = await source.registry.get_manifest(source.repository, src.digest)
        index = parse_manifest(theirs, registry=source.registry.name)
        if not isinstance(index, IndexManifest):
            raise RemoteServerError(f"referrers tag {tag!r} is not an index",
                                    registry=source.registry.name)

        gone: set[str] = set()

        async def one(entry: Descriptor) -> None:
            try:
                if await self._copier.ensure_manifest(entry):
                    copied[0] += 1
            except NotFoundError as exc:  # a stale index lists what was deleted: leave it out
                if exc.registry != self._source.registry.name:
                    raise
                gone.add(entry.digest)

        async with together() as nursery:
            for entry in dict.fromkeys(index.manifests):
                nursery.start_soon(one, entry)
        if gone:
            self._log("warning", f"referrers tag {tag!r} lists {len(gone)} manifests the "
                      "source does not have: left out")
        merged = merge_fallback(theirs.raw, theirs.digest, ours.raw if ours else None,
                                gone=frozenset(gone))
        manifest = theirs if merged == theirs.raw else RawManifest(
            merged, theirs.media_type, sha256_digest(merged))
        await target.registry.put_manifest(target.repository, tag, manifest)
        return [str(e["digest"]) for e in fallback_entries(merged)]


def _rewritten_from(manifest: RawManifest) -> str | None:
    """The source digest a rewritten index of ours records (copy.SOURCE_DIGEST_ANNOTATION)."""
    try:
        obj = parse_json(manifest.raw)
    except ValueError:
        return None
    annotations = obj.get("annotations") if isinstance(obj, dict) else None
    value = annotations.get(SOURCE_DIGEST_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None
