"""The port the engine copies through: what it needs from a registry, whatever stores it.

`RegistryPort` has the shape of regclient's scheme interface: the engine speaks only to it, so
the HTTP backend (`daemon/registry`), the in-memory one (`oci/memory.py`) or an OCI-layout
target stand in for each other without touching the engine.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from .manifest import IndexManifest
from .types import Descriptor, RawManifest, UploadSession


class BlobReader(Protocol):
    """An open blob download: its size, and its bytes in chunks."""

    size: int | None

    def chunks(self) -> AsyncIterator[bytes]: ...


class RegistryPort(Protocol):
    """What the engine needs from a registry. Every method raises `daemon.base.errors` types only."""

    name: str

    async def ping(self) -> str:
        """Check that the backend answers and accepts our credentials; its API version."""
        ...

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

    async def delete_tag(self, repository: str, tag: str) -> bool:
        """Remove one tag by name (OCI 1.1), its manifest kept; False when the registry deletes
        only by digest. NotFoundError when the tag is gone already."""
        ...

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """Remove a manifest and every tag pointing at it; DeleteRefusedError when the registry
        refuses deletes, NotFoundError when it is gone already."""
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
