"""Manifests: parse what a registry served, and choose the platforms of an index to copy.

Pure: bytes in, values out. The copy engine needs from a manifest only the descriptors it must
copy first (blobs of an image, children of an index) and, for an index, which children the rule
wants. Everything else in the JSON is carried byte-for-byte, or, when an index is rewritten,
field-for-field from the original object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..base.errors import RemoteServerError, UnsupportedError
from ..values.platform import Platform
from .digest import parse_digest
from .jsondoc import TooDeepError, parse_json
from .types import (
    IMAGE_TYPES,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_TYPES,
    Descriptor,
    RawManifest,
)

SCHEMA1_MESSAGE = (
    "Docker schema 1 manifests are not supported; re-push the image with a current client"
)
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION = "attestation-manifest"
_EXCERPT = 200


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """A single image (or an OCI artifact: any config media type is accepted)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    subject: Descriptor | None = None

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Every blob the image needs at the target, config first."""
        return (self.config, *self.layers)


@dataclass(frozen=True, slots=True)
class IndexManifest:
    """A Docker manifest list or an OCI index: children by digest, usually one per platform."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None = None


class _Invalid(Exception):
    """Internal: what is wrong with the JSON, turned into a RemoteServerError with an excerpt."""


def parse_manifest(
    raw: RawManifest, *, registry: str | None = None
) -> ImageManifest | IndexManifest:
    """Parse a manifest the registry served.

    The media type comes from `raw.media_type` when it is a manifest type, else from the JSON
    "mediaType", else it is guessed from the keys (an OCI index or manifest may omit it).

    Raises:
        UnsupportedError: Docker schema 1, or a media type regsync does not copy.
        RemoteServerError: the body is not JSON, not an object, or misses a required field.
    """
    try:
        return _parse(raw)
    except _Invalid as exc:
        raise RemoteServerError(
            f"invalid manifest {raw.digest}: {exc}; body starts with: {_excerpt(raw.raw)}",
            registry=registry,
        ) from None
    except UnsupportedError as exc:
        exc.registry = registry
        raise


def _parse(raw: RawManifest) -> ImageManifest | IndexManifest:
    if raw.media_type in SCHEMA1_TYPES:
        raise UnsupportedError(SCHEMA1_MESSAGE)
    obj = _load_object(raw.raw)
    media_type = _media_type(raw.media_type, obj)
    subject = _descriptor(obj["subject"], "subject") if "subject" in obj else None
    if media_type in INDEX_TYPES:
        entries = _list(obj, "manifests")
        children = tuple(_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries))
        return IndexManifest(media_type, children, subject)
    if "config" not in obj:
        raise _Invalid("missing field 'config'")
    config = _descriptor(obj["config"], "config")
    layers = tuple(_descriptor(e, f"layers[{i}]") for i, e in enumerate(_list(obj, "layers")))
    return ImageManifest(media_type, config, layers, subject)


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        obj = parse_json(body)
    except TooDeepError as exc:
        raise _Invalid(str(exc)) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _Invalid(f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise _Invalid(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _media_type(served: str, obj: dict[str, Any]) -> str:
    declared = obj.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _Invalid("'mediaType' is not a string")
    if declared in SCHEMA1_TYPES or obj.get("schemaVersion") == 1:
        raise UnsupportedError(SCHEMA1_MESSAGE)
    for candidate in (served, declared):
        if candidate in INDEX_TYPES or candidate in IMAGE_TYPES:
            return candidate
    if declared:
        raise UnsupportedError(f"unsupported manifest media type {declared[:100]!r}")
    if "manifests" in obj:
        return OCI_INDEX
    if "layers" in obj:
        return OCI_MANIFEST
    if "fsLayers" in obj:
        raise UnsupportedError(SCHEMA1_MESSAGE)
    raise _Invalid("no media type, and neither 'manifests' nor 'layers'")


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        raise _Invalid(f"missing field {key!r}")
    if not isinstance(value, list):
        raise _Invalid(f"{key!r} is not a list")
    return value


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _Invalid(f"{where} is not an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _Invalid(f"{where}: missing or invalid 'mediaType'")
    if not isinstance(digest, str):
        raise _Invalid(f"{where}: missing or invalid 'digest'")
    try:
        parse_digest(digest)
    except ValueError as exc:
        raise _Invalid(f"{where}: {exc}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _Invalid(f"{where}: missing or invalid 'size'")
    platform = _platform(value["platform"], where) if "platform" in value else None
    return Descriptor(media_type, digest, size, platform, _annotations(value, where))


def _platform(value: object, where: str) -> Platform:
    if not isinstance(value, dict):
        raise _Invalid(f"{where}: 'platform' is not an object")
    os_, arch, variant = value.get("os"), value.get("architecture"), value.get("variant", "")
    if not isinstance(os_, str) or not isinstance(arch, str) or not isinstance(variant, str):
        raise _Invalid(f"{where}: 'platform' needs string 'os' and 'architecture'")
    return Platform(os_, arch, variant)


def _annotations(value: dict[str, Any], where: str) -> dict[str, str]:
    annotations = value.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(v, str) for v in annotations.values()
    ):
        raise _Invalid(f"{where}: 'annotations' is not a map of strings")
    return dict(annotations)


def _excerpt(body: bytes) -> str:
    text = body[:_EXCERPT].decode("utf-8", "replace")[:_EXCERPT]
    return "".join(c if c.isprintable() else " " for c in text)


# Platforms ----------------------------------------------------------------------------------

#: architecture spellings other tools use (uname, Debian), as containerd normalises them
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
#: the variant a bare architecture means, so "arm64" == "arm64/v8" and "amd64" == "amd64/v1"
_DEFAULT_VARIANT = {"arm64": "v8", "amd64": "v1", "arm": "v7"}


def _normal(p: Platform) -> Platform:
    arch = _ARCH_ALIASES.get(p.architecture.lower(), p.architecture.lower())
    variant = p.variant.lower()
    if variant.isdigit():
        variant = "v" + variant
    return Platform(p.os.lower(), arch, variant or _DEFAULT_VARIANT.get(arch, ""))


def wants_platform(
    p: Platform, *, architectures: Sequence[str], platforms: Sequence[Platform]
) -> bool:
    """Whether a rule wants platform `p`: its architecture is listed, or it matches a platform
    (os and architecture; the variant too when the wanted platform names one)."""
    have = _normal(p)
    if any(_normal(Platform(have.os, a)).architecture == have.architecture for a in architectures):
        return True
    for wanted in platforms:
        w = _normal(wanted)
        if (w.os, w.architecture) == (have.os, have.architecture) and (
            not wanted.variant or w.variant == have.variant
        ):
            return True
    return False


def image_platform(config_json: bytes) -> Platform | None:
    """The platform an image config blob declares, or None when it declares none (or is junk)."""
    try:
        obj = parse_json(config_json)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    os_, arch, variant = obj.get("os"), obj.get("architecture"), obj.get("variant") or ""
    if not (isinstance(os_, str) and os_ and isinstance(arch, str) and arch):
        return None
    return Platform(os_, arch, variant if isinstance(variant, str) else "")


def describe_platforms(index: IndexManifest) -> str:
    """The platforms an index offers, for "no platform matches X; the index has: ..." messages."""
    names = dict.fromkeys(
        str(d.platform) for d in index.manifests if d.platform and not is_describer(d)
    )
    return ", ".join(names) or "no platforms"


@dataclass(frozen=True, slots=True)
class PlatformChoice:
    """Which children of an index to copy. `raw` is None exactly when nothing is dropped or
    replaced."""

    #: children to copy, in original order (images, nested indexes, what describes them); a
    #: nested index the caller rewrote appears as its replacement descriptor
    kept: tuple[Descriptor, ...]
    dropped: tuple[Descriptor, ...]
    #: None: copy the index byte-for-byte (digest preserved); else the rewritten index bytes
    raw: bytes | None


def select_platforms(
    index: IndexManifest,
    raw: bytes,
    *,
    architectures: Sequence[str] = (),
    platforms: Sequence[Platform] = (),
    annotations: Mapping[str, str] | None = None,
    nested: Mapping[str, Descriptor | None] | None = None,
) -> PlatformChoice:
    """Keep the children a rule wants; rewrite the index when some are dropped or replaced.

    - No filter: everything is kept and the index is copied as it is.
    - A nested index (an entry of an index media type) is decided by the caller, who walked it
      first (children before parents): `nested` maps its digest to its replacement descriptor
      (the same one when nothing inside was dropped) or to None when nothing in it was wanted;
      an entry missing from `nested` is kept as it is.
    - An entry that describes another (any `vnd.docker.reference.digest`, whatever its
      `vnd.docker.reference.type`: buildx attestations, `builder` entries) goes with the entry it
      names: kept with it, dropped with it, and dropped when what it names was rewritten (it
      describes a digest the target will not have). One naming nothing is kept (harmless).
    - A child without a platform that describes nothing (a signature or SBOM attached to the
      whole index, an unlabelled image) is kept: no platform filter can speak about it, and
      dropping it would lose content silently.
    - When nothing selectable (an image with a platform, a nested index) is kept, `kept` is
      empty: the caller fails the tag with `describe_platforms` (or drops a nested index) rather
      than push an index holding only the unlabelled extras.

    The rewritten index is the original JSON object with only the kept entries (a replaced
    nested index gets its new digest and size, every other field of its entry kept), every other
    field unchanged, serialised compactly (`separators=(",", ":")`, UTF-8): the digest changes
    anyway, so the smallest deterministic form is used. `annotations` are merged into the
    rewritten index's top-level annotations only (e.g. the source digest, so a later run can
    tell the rewrite is current); an index copied byte-for-byte is never touched.
    """
    if not architectures and not platforms:
        return PlatformChoice(index.manifests, (), None)
    entries = index.manifests
    resolved = nested or {}
    nests = [d.media_type in INDEX_TYPES and not is_describer(d) for d in entries]
    images = [
        d.platform is not None and not is_describer(d) and not nest
        for d, nest in zip(entries, nests, strict=True)
    ]
    keep: set[int] = set()
    replaced: dict[int, Descriptor] = {}
    for i, d in enumerate(entries):
        if nests[i]:
            new = resolved.get(d.digest, d)
            if new is not None:
                keep.add(i)
                if new.digest != d.digest:
                    replaced[i] = new
        elif images[i]:
            if d.platform is not None and wants_platform(
                d.platform, architectures=architectures, platforms=platforms
            ):
                keep.add(i)
        elif not is_describer(d):
            keep.add(i)  # unlabelled extras
    if (any(images) or any(nests)) and not any(images[i] or nests[i] for i in keep):
        return PlatformChoice((), entries, _rewrite(raw, len(entries), set(), {}, annotations))
    # describers follow what they name, as it is (not a rewritten replacement)
    intact = {entries[i].digest for i in keep if i not in replaced}
    keep |= {i for i, d in enumerate(entries) if _describer_kept(d, intact)}
    if len(keep) == len(entries) and not replaced:
        return PlatformChoice(entries, (), None)
    return PlatformChoice(
        tuple(replaced.get(i, d) for i, d in enumerate(entries) if i in keep),
        tuple(d for i, d in enumerate(entries) if i not in keep),
        _rewrite(raw, len(entries), keep, replaced, annotations),
    )


def is_describer(d: Descriptor) -> bool:
    """An entry that describes another entry of the index (a buildx attestation, a `builder`
    entry, any `vnd.docker.reference.digest`): it is not an image of a platform."""
    return REFERENCE_DIGEST in d.annotations or d.annotations.get(REFERENCE_TYPE) == ATTESTATION


def _describer_kept(d: Descriptor, intact: set[str]) -> bool:
    if not is_describer(d):
        return False
    ref = d.annotations.get(REFERENCE_DIGEST)
    return ref is None or ref in intact


def _rewrite(
    raw: bytes,
    count: int,
    keep: set[int],
    replaced: Mapping[int, Descriptor],
    annotations: Mapping[str, str] | None,
) -> bytes:
    obj = json.loads(raw)
    entries = obj.get("manifests") if isinstance(obj, dict) else None
    if not isinstance(entries, list) or len(entries) != count:
        raise ValueError("raw index bytes do not match the parsed index")
    for i, new in replaced.items():
        entries[i] = {**entries[i], "digest": new.digest, "size": new.size}
    obj["manifests"] = [e for i, e in enumerate(entries) if i in keep]
    if annotations:
        existing = obj.get("annotations")
        obj["annotations"] = {**(existing if isinstance(existing, dict) else {}), **annotations}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
