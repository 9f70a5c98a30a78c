"""Manifests over HTTP: HEAD, GET and PUT, each digest checked; the Referrers API's index.

A HEAD is free on Docker Hub's pull quota and tells a manifest's digest, which is all a re-sync
needs; a GET is verified against the digest asked for (or the one the registry announces) and
refused over 4 MiB or in Docker schema 1; a PUT must be echoed with the same digest. A reference
that is neither a tag nor a digest is never sent (`InvalidNameError`).
"""

from __future__ import annotations

from dataclasses import replace

from ..base.errors import (
    DigestMismatchError,
    InvalidNameError,
    NotFoundError,
    RemoteServerError,
    UnsupportedError,
)
from ..base.safetext import shown_name
from ..oci.digest import DigestVerifier, sha256_digest
from ..oci.jsondoc import parse_json
from ..oci.manifest import SCHEMA1_MESSAGE, IndexManifest
from ..oci.reference import is_reference, quoted_path
from ..oci.types import (
    IMAGE_TYPES,
    INDEX_TYPES,
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    SCHEMA1_TYPES,
    Descriptor,
    RawManifest,
)
from . import referrersapi
from .pagination import PageRefused, next_page
from .session import Call, Reply, Session, pull, push

_MANIFEST_ACCEPT = ", ".join((*MANIFEST_ACCEPT, *sorted(SCHEMA1_TYPES)))


def _what(repository: str, reference: str) -> str:
    return f"manifest {repository}{'@' if ':' in reference else ':'}{reference}"


def _path(registry: str, repository: str, reference: str) -> str:
    """The manifest's URL path; a reference that is neither tag nor digest is never sent."""
    if not is_reference(reference):
        raise InvalidNameError(
            f"manifest {repository}: {shown_name(reference)} is not a valid tag or digest;"
            " not requested",
            registry=registry,
        )
    return quoted_path(repository, "manifests", reference)


async def head_manifest(s: Session, repository: str, reference: str) -> Descriptor | None:
    """The manifest's descriptor without a GET (free on Docker Hub's quota); None if absent.

    A registry that sends no Docker-Content-Digest is answered by a GET (counted as
    manifest.head.fallback), since a digest is the whole point.
    """
    what = _what(repository, reference)
    call = Call(
        "HEAD",
        _path(s.registry, repository, reference),
        "manifest.head",
        what,
        scopes=pull(repository),
        repository=repository,
        headers=(("Accept", _MANIFEST_ACCEPT),),
    )
    try:
        reply = await s.send(call)
    except NotFoundError:
        return None
    digest = reply.header("docker-content-digest")
    if not digest:
        s.counts["manifest.head.fallback"] += 1
        manifest = await get_manifest(s, repository, reference)
        return Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))
    if ":" not in digest or not is_reference(digest):  # it reaches URLs, the store, the log
        raise InvalidNameError(
            f"{what}: the registry's Docker-Content-Digest {shown_name(digest)} is not a"
            " digest; not requested", registry=s.registry)
    if ":" in reference and digest != reference:
        raise DigestMismatchError(
            f"{what}: the registry says its digest is {digest}", registry=s.registry
        )
    media_type = media_type_of(reply.header("content-type"))
    length = reply.header("content-length") or "0"
    return Descriptor(media_type, digest, int(length) if length.isdigit() else 0)


async def get_manifest(s: Session, repository: str, reference: str) -> RawManifest:
    """The manifest exactly as served, its digest verified.

    Raises:
        UnsupportedError: larger than 4 MiB, or Docker schema 1.
        DigestMismatchError: the bytes do not hash to the digest asked for or announced.
    """
    what = _what(repository, reference)
    call = Call(
        "GET",
        _path(s.registry, repository, reference),
        "manifest.get",
        what,
        scopes=pull(repository),
        repository=repository,
        headers=(("Accept", _MANIFEST_ACCEPT),),
        body_limit=MAX_MANIFEST_BYTES,
        metered=True,
    )
    reply = await s.send(call)
    if len(reply.body) > MAX_MANIFEST_BYTES:
        raise UnsupportedError(f"{what}: manifest larger than 4 MiB", registry=s.registry)
    media_type = _manifest_type(s.registry, reply, what)
    expected = reference if ":" in reference else reply.header("docker-content-digest")
    digest = _verified(s.registry, reply.body, expected, what)
    return RawManifest(raw=reply.body, media_type=media_type, digest=digest)


def _manifest_type(registry: str, reply: Reply, what: str) -> str:
    served = media_type_of(reply.header("content-type"))
    if served in IMAGE_TYPES or served in INDEX_TYPES:
        return served
    try:
        document = parse_json(reply.body)
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    if served in SCHEMA1_TYPES or document.get("schemaVersion") == 1:
        raise UnsupportedError(f"{what}: {SCHEMA1_MESSAGE}", registry=registry)
    declared = document.get("mediaType")
    return declared if isinstance(declared, str) and declared else served


def _verified(registry: str, body: bytes, expected: str | None, what: str) -> str:
    if not expected:
        return sha256_digest(body)
    try:
        verifier = DigestVerifier.for_digest(expected)
    except ValueError as exc:
        raise RemoteServerError(f"{what}: {exc}", registry=registry) from None
    verifier.update(body)
    if verifier.digest != expected:
        raise DigestMismatchError(
            f"{what}: the registry served bytes hashing to {verifier.digest}, not {expected}",
            registry=registry,
        )
    return expected


async def put_manifest(
    s: Session, repository: str, reference: str, manifest: RawManifest
) -> None:
    """Store `manifest` under a tag or its digest; the registry must echo the same digest."""
    what = _what(repository, reference)
    if manifest.digest.startswith("sha256:") and sha256_digest(manifest.raw) != manifest.digest:
        raise DigestMismatchError(
            f"{what}: refusing to push bytes that do not hash to {manifest.digest}",
            registry=s.registry,
        )
    call = Call(
        "PUT",
        _path(s.registry, repository, reference),
        "manifest.put",
        what,
        scopes=push(repository),
        repository=repository,
        headers=(("Content-Type", manifest.media_type),),
        content=manifest.raw,
    )
    reply = await s.send(call)
    echoed = reply.header("docker-content-digest")
    if echoed and echoed != manifest.digest:
        raise DigestMismatchError(
            f"{what}: the registry stored the manifest as {echoed}, not {manifest.digest}",
            registry=s.registry,
        )


async def list_referrers(
    s: Session, repository: str, digest: str
) -> tuple[RawManifest, IndexManifest] | None:
    """The OCI 1.1 Referrers API's index of `digest`'s referrers, every `Link` page of it
    within bounds (same origin and path, at most MAX_PAGES pages and 4 MiB in all); None when
    the registry has no such API (referrersapi.py)."""
    call = referrersapi.referrers_call(repository, digest)
    pages = referrersapi.Pages(registry=s.registry)
    try:
        reply = await s.send(call)
    except (NotFoundError, UnsupportedError):
        return None
    while True:
        following = pages.add(reply)
        if following is None:
            return pages.answer()
        try:
            target = next_page(s.base_url, call.url, following)
        except PageRefused as exc:
            raise RemoteServerError(f"{call.what}: {exc}", registry=s.registry) from None
        pages.visit(target)
        reply = await s.send(replace(call, url=target, params=(), body_limit=pages.bytes_left))


def media_type_of(content_type: str | None) -> str:
    """The media type of a Content-Type header, parameters dropped."""
    return (content_type or "").split(";", 1)[0].strip()
