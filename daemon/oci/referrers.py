"""Referrers by tag: the OCI referrers tag schema and cosign's tags. Pure: names and JSON.

A registry without the OCI 1.1 Referrers API keeps the referrers of a manifest `sha256:<hex>`
(signatures, SBOMs, attestations: manifests whose `subject` names it) in an index tagged
`sha256-<hex>` (the "fallback" tag of the distribution spec). cosign, before OCI 1.1, tags its
signatures `sha256-<hex>.sig`, attestations `.att` and SBOMs `.sbom`. These tags belong to their
subject, not to the rule's tag filters: the engine keeps them out of the tag selection and has
them follow the manifests it copies.

The target's fallback index may list referrers the source does not (pushed there by someone
else): `merge_fallback` keeps them all, and marks a merged index with the digest of the source
index it came from, so that a re-run tells "unchanged" without a GET on the source.
"""

from __future__ import annotations

import json
import re

from ..base.errors import UnsupportedError
from .jsondoc import parse_json
from .types import MAX_MANIFEST_BYTES, OCI_INDEX

#: cosign's tag suffixes, in the order they are looked up
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
#: the artifact type of what a cosign tag holds: the one cosign itself gives the same artifact
#: when it writes OCI 1.1 referrers (`application/vnd.dev.cosign.artifact.<kind>.v1+json`)
COSIGN_TYPES = {s: f"application/vnd.dev.cosign.artifact.{s[1:]}.v1+json" for s in COSIGN_SUFFIXES}
#: annotation on a merged fallback index: the digest of the source index it was merged from
MERGED_FROM = "io.regsync.referrers.source.digest"
#: annotation on a merged fallback index: the artifact types it was chosen by (comma-separated)
MERGED_TYPES = "io.regsync.referrers.artifact-types"
#: why a referrer tag is not in the tag selection
FOLLOWS_SUBJECT = "referrer tag: follows its subject"

_TAG = re.compile(r"sha256-[0-9a-f]{64}(?:\.sig|\.att|\.sbom)?")


def fallback_tag(digest: str) -> str | None:
    """The referrers tag of `digest` ("sha256:<hex>" -> "sha256-<hex>"); None for other
    algorithms (a sha512 tag would pass the 128-character limit and be truncated)."""
    algorithm, _, hex_ = digest.partition(":")
    if algorithm != "sha256" or len(hex_) != 64:
        return None
    return f"sha256-{hex_}"


def referrer_tags(digest: str) -> tuple[str, ...]:
    """Every tag that may hold referrers of `digest`: the fallback index first, then cosign's."""
    base = fallback_tag(digest)
    return () if base is None else (base, *(base + s for s in COSIGN_SUFFIXES))


def is_referrer_tag(tag: str) -> bool:
    """A tag of the referrers schema or of cosign: it travels with its subject."""
    return _TAG.fullmatch(tag) is not None


def tag_artifact_type(tag: str) -> str | None:
    """The artifact type of a cosign tag's content (by its suffix); None for a fallback tag."""
    _, dot, suffix = tag.rpartition(".")
    return COSIGN_TYPES.get(dot + suffix) if dot else None


def wanted_type(artifact_type: object, types: tuple[str, ...]) -> bool:
    """Whether a referrer of `artifact_type` follows under `artifact_types: types` (empty:
    every one). A referrer whose type is unknown (an entry without `artifactType`, which the
    distribution spec requires) follows only when no type is chosen."""
    return not types or artifact_type in types


def entry_type(entry: dict[str, object]) -> object:
    """The `artifactType` a fallback or Referrers API entry declares (None when it has none)."""
    return entry.get("artifactType")


def fallback_entries(raw: bytes) -> list[dict[str, object]]:
    """The entries of a fallback index, as JSON objects; [] when it has none or is not one."""
    try:
        obj = parse_json(raw)
    except ValueError:
        return []
    entries = obj.get("manifests") if isinstance(obj, dict) else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("digest"), str)]


def merged_from(raw: bytes, types: tuple[str, ...] = ()) -> str | None:
    """The source digest a merged fallback index records, if it was merged under the same
    `artifact_types` (another choice of types makes another index)."""
    try:
        obj = parse_json(raw)
    except ValueError:
        return None
    annotations = obj.get("annotations") if isinstance(obj, dict) else None
    if not isinstance(annotations, dict) or annotations.get(MERGED_TYPES, "") != ",".join(types):
        return None
    value = annotations.get(MERGED_FROM)
    return value if isinstance(value, str) else None


def merge_fallback(
    source: bytes, source_digest: str, target: bytes | None, *, gone: frozenset[str] = frozenset(),
    types: tuple[str, ...] = (),
) -> bytes:
    """The fallback index to push: the source's, plus every entry only the target has, minus
    the source's entries in `gone` (listed, but no longer on the source: a stale index; or of
    an artifact type the rule does not follow) unless the target lists them too.

    Byte-for-byte the source's when nothing is added or removed (its digest is preserved, so an
    unchanged index is told by HEADs alone); else the source object with the target's extra
    entries after its own, marked with `MERGED_FROM` (and `MERGED_TYPES` when `types` chose),
    serialised compactly. Never drops an entry
    of the target's.

    Raises:
        ValueError: `source` is not JSON; TypeError: not an object with a list of `manifests`.
    """
    obj = parse_json(source)
    own = obj.get("manifests") if isinstance(obj, dict) else None
    if not isinstance(own, list) or not isinstance(obj, dict):
        raise TypeError("not an index: no list of manifests")
    kept = [e for e in own if not (isinstance(e, dict) and e.get("digest") in gone)]
    have = {e.get("digest") for e in kept if isinstance(e, dict)}
    extra = [e for e in fallback_entries(target or b"") if e["digest"] not in have]
    if not extra and len(kept) == len(own):
        return source
    extra = list({str(e["digest"]): e for e in extra}.values())
    obj["manifests"] = [*kept, *extra]
    existing = obj.get("annotations")
    obj["annotations"] = {**(existing if isinstance(existing, dict) else {}),
                          MERGED_FROM: source_digest,
                          **({MERGED_TYPES: ",".join(types)} if types else {})}
    return _serialised(obj)


def add_entries(target: bytes | None, entries: list[dict[str, object]]) -> bytes | None:
    """The target's fallback index with `entries` it lacks appended (a new index when it has
    none); None when it lists them all already. Never drops an entry of the target's."""
    existing = fallback_entries(target) if target is not None else []
    have = {e["digest"] for e in existing}
    missing = list({str(e["digest"]): e for e in entries if e["digest"] not in have}.values())
    if not missing:
        return None
    obj: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if target is not None:
        try:
            parsed = parse_json(target)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            obj = parsed
    obj["manifests"] = [*existing, *missing]
    return _serialised(obj)


def _serialised(index: dict[str, object]) -> bytes:
    """A merged index of referrers, compact; refused past the size any registry (and regsync
    itself) takes for a manifest, which a target's own entries plus the source's can reach."""
    raw = json.dumps(index, separators=(",", ":"), ensure_ascii=False).encode()
    if len(raw) > MAX_MANIFEST_BYTES:
        raise UnsupportedError(
            f"the merged index of referrers would be {len(raw)} bytes, over the"
            f" {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB a manifest may be: the target's"
            " referrers tag lists too many entries (delete that tag's stale entries there)")
    return raw
