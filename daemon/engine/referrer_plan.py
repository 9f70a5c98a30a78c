"""Which manifests' referrers follow a tag: its own digest and its index's children, at any depth.

After a copy (or a skip) the subjects are read from the target's copy of the tag, never the
source's: a re-run costs no source GET. A rewritten index (a platform filter dropped children)
is not a subject: it has a digest the source never had, its source referrers describe the
original. A plan of a tag that is not at the target yet reads the source's index instead (one
GET per index) and makes of it what the rule's platform filter would, without writing.
"""

from __future__ import annotations

from ..oci.manifest import IndexManifest, is_describer, parse_manifest, select_platforms
from ..oci.types import INDEX_TYPES, Descriptor
from .plan import PlatformFilter, recorded_source
from .side import Side

#: referrers of referrers, at most this deep (a signature of an SBOM of an image is 2); also
#: how deep the children of nested indexes are walked for their subjects
MAX_REFERRER_DEPTH = 4


async def target_subjects(
    source: Side, target: Side, digest: str, media_type: str, into: list[str], depth: int = 0
) -> str | None:
    """Collect the digests whose referrers follow: `digest` unless it is a rewrite of ours,
    and the children of an index (read from the target's copy). The source digest of a
    rewritten index, when `digest` is one."""
    if media_type not in INDEX_TYPES:
        into.append(digest)
        return None
    ours = await target.registry.get_manifest(target.repository, digest)
    parsed = parse_manifest(ours, registry=target.registry.name)
    source_digest = recorded_source(ours.raw)
    if source_digest is not None and await source.registry.head_manifest(
        source.repository, digest
    ):
        source_digest = None  # the source's own bytes (a mirror of a mirror): not our rewrite
    if source_digest is None:
        into.append(digest)
    if isinstance(parsed, IndexManifest) and depth < MAX_REFERRER_DEPTH:
        for child in parsed.manifests:
            await target_subjects(source, target, child.digest, child.media_type, into,
                                  depth + 1)
    return source_digest


async def source_subjects(
    source: Side, src: Descriptor, platforms: PlatformFilter, into: list[str], depth: int = 0
) -> str | None:
    """The subjects a copy of `src` would give, from the source: an index's children as the
    platform filter keeps them; a rewritten index itself is no subject (its digest is returned,
    as `target_subjects` does)."""
    if src.media_type not in INDEX_TYPES:
        into.append(src.digest)
        return None
    manifest = await source.registry.get_manifest(source.repository, src.digest)
    parsed = parse_manifest(manifest, registry=source.registry.name)
    if not isinstance(parsed, IndexManifest):
        into.append(src.digest)
        return None
    choice = select_platforms(parsed, manifest.raw, architectures=platforms.architectures,
                              platforms=platforms.platforms)
    if choice.raw is None:
        into.append(src.digest)
    for child in choice.kept if depth < MAX_REFERRER_DEPTH else ():
        if child.media_type in INDEX_TYPES and not is_describer(child):
            await source_subjects(source, child, platforms, into, depth + 1)
        else:
            into.append(child.digest)
    return None if choice.raw is None else src.digest

