"""Value types shared by the registry client and the engine, and the port the engine copies through.

`RegistryPort` has the shape of regclient's scheme interface: the engine speaks only to it, so a
fault-injecting fake or an OCI-layout target can stand in without touching the engine.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # manifest.py imports this module's values
    from .manifest import IndexManifest

# Media types ---------------------------------------------------------------------------------
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
#: Accept header for manifest requests, preferred first
MANIFEST_ACCEPT = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A pointer to content: what a manifest lists, and what HEAD tells about a manifest."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class RawManifest:
    """A manifest exactly as the registry served it; digest already verified against `raw`."""

    raw: bytes
    media_type: str
    digest: str


@dataclass(frozen=True, slots=True)
class UploadSession:
    """A blob upload the registry started: where to send the bytes, and its smallest part."""

    repository: str
    location: str
    min_chunk: int = 0  # OCI-Chunk-Min-Length: parts of a chunked upload, the last one aside


class BlobReader(Protocol):
    """An open blob download: its size, and its bytes in chunks."""

    size: int | None

    def chunks(self) -> AsyncIterator[bytes]: ...


class RegistryPort(Protocol):
    """What the engine needs from a registry. Every method raises `daemon.errors` types only."""

    name: str

    async def list_tags(self, repository: str) -> list[str]:
        """All tags, following `Link` pagination."""
        ...

    def catalog_pages(self) -> AsyncGenerator[list[str], None]:
        """`/v2/_catalog` (a glob rule's source) one page at a time, paginated alike."""
        ...

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The manifest's digest without a GET (free on Docker Hub's quota); None if absent."""
        ...

    async def get_manifest(self, repository: str, reference: str) -> RawManifest:
        """The manifest bytes; digest verified; schema1 and oversize refused."""
        ...

    async def put_manifest(self, repository: str, reference: str, manifest: RawManifest) -> None:
        """Store the manifest under a tag or its digest; the registry must echo the same digest."""
        ...

    async def list_referrers(
        self, repository: str, digest: str
    ) -> tuple[RawManifest, IndexManifest] | None:
        """The OCI 1.1 Referrers API's index of `digest`'s referrers (the raw answer and its
        parsed form); None when the registry has no such API."""
        ...

    async def head_blob(self, repository: str, digest: str) -> int | None:
        """Size of the blob if present, else None."""
        ...

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; False when the registry started an upload instead."""
        ...

    async def start_upload(
        self, repository: str, digest: str, *, mount_from: str | None
    ) -> UploadSession | None:
        """One POST: mount `digest` from `mount_from` (None: none), or start an upload. None when
        the blob is now in `repository`; else the session to upload to."""
        ...

    async def cancel_upload(self, session: UploadSession) -> None:
        """Best-effort DELETE of a session that will not be used."""
        ...

    def open_blob(self, repository: str, digest: str) -> AbstractAsyncContextManager[BlobReader]:
        """Stream a blob; the caller verifies the digest as bytes pass."""
        ...

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        size: int | None,
        chunks: AsyncIterator[bytes],
        *,
        session: UploadSession | None = None,
        chunked: bool = False,
    ) -> None:
        """Upload (into `session`, else a new one), committing only if the bytes hash to `digest`
        (else DigestMismatchError and the upload is abandoned, never committed). One streamed
        PUT when the size is known, unless `chunked` (large bodies in parts); UploadRefusedError
        when the registry refuses that (the session is then abandoned: retry `chunked=True`)."""
        ...
