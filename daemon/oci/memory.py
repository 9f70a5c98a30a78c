"""An in-memory backend of the port: a registry in a few dicts, for tests in milliseconds.

A real backend, not a mock: blobs by digest, manifests by digest and tag, cross-repository
mounts, tag and catalog listings, digest checks on every write. It refuses what distribution
refuses, so the engine's ordering is checked, not assumed: a manifest whose blobs or child
manifests the repository lacks is MANIFEST_BLOB_UNKNOWN, never stored (a tag written first
fails). Every operation is recorded in `ops` (name, repository, reference) so tests assert
order and counts; `fail` injects errors; `before` runs at each operation (a test cancels there
to stop a run at an exact instant). Each operation is a trio checkpoint, as network I/O is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import count

import trio

from ..base.errors import DigestMismatchError, NotFoundError, RegistryError
from .digest import DigestVerifier, sha256_digest
from .manifest import ImageManifest, IndexManifest, parse_manifest
from .port import BlobReader
from .types import Descriptor, RawManifest, UploadSession


@dataclass(frozen=True, slots=True)
class Op:
    """One operation the port was asked for: `name` as the HTTP client counts requests."""

    name: str  # "manifest.head", "manifest.get", "manifest.put", "blob.get", ...
    repository: str = ""
    reference: str = ""  # the tag or digest asked about; "" for listings


@dataclass(slots=True)
class _Fault:
    name: str
    reference: str | None
    error: Callable[[], BaseException]
    times: int | None


@dataclass(slots=True)
class _Put:
    """A manifest PUT in flight (with `put_seconds`): what it writes, what it reads."""

    repository: str
    digest: str
    names: frozenset[str]
    torn_by: str | None = None  # a manifest it names, rewritten while this PUT was in flight


@dataclass(slots=True)
class _Repository:
    blobs: set[str] = field(default_factory=set)
    manifests: set[str] = field(default_factory=set)
    tags: dict[str, str] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes, chunk: int) -> None:
        self.size: int | None = len(data)
        self._data = data
        self._chunk = chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), self._chunk):
            await trio.lowlevel.checkpoint()
            yield self._data[start:start + self._chunk]


class MemoryPort:
    """One registry held in memory; `name` is the registry's name in the rules."""

    def __init__(self, name: str, *, chunk_size: int = 64 * 1024,
                 tag_deletes: bool = True) -> None:
        self.name = name
        #: whether a tag DELETE removes that tag only (OCI 1.1); False: refused, as
        #: distribution 2.8 does (it deletes by digest only)
        self.tag_deletes = tag_deletes
        self.ops: list[Op] = []
        self.before: Callable[[Op], None] | None = None
        #: (operation name, reference) -> seconds it takes
        self.delays: dict[tuple[str, str], float] = {}
        #: how long a manifest PUT takes; 0: no time, so PUTs never overlap
        self.put_seconds = 0.0
        #: (index, manifest it names) of each PUT that failed: it overlapped a PUT of that one
        self.torn: list[tuple[str, str]] = []
        self._puts: list[_Put] = []
        self._blobs: dict[str, bytes] = {}
        self._manifests: dict[str, RawManifest] = {}
        self._repositories: dict[str, _Repository] = {}
        self._uploads: dict[str, str] = {}  # location -> repository
        self._faults: list[_Fault] = []
        self._chunk = chunk_size
        self._ids = count(1)

    # --- for tests: content in, faults, what was asked ------------------------------------

    def add_blob(self, repository: str, data: bytes) -> Descriptor:
        digest = sha256_digest(data)
        self._blobs[digest] = data
        self._repository(repository).blobs.add(digest)
        return Descriptor("application/octet-stream", digest, len(data))

    def add_manifest(self, repository: str, raw: bytes, media_type: str,
                     tag: str | None = None) -> RawManifest:
        """Store a manifest as a push would (its content must be there), tagged if `tag`."""
        manifest = RawManifest(raw, media_type, sha256_digest(raw))
        self._store(repository, tag or manifest.digest, manifest)
        return manifest

    def fail(self, name: str, error: Callable[[], BaseException], *,
             reference: str | None = None, times: int | None = None) -> None:
        """Make operation `name` (on `reference` only, if given) raise `error()`, `times`
        times (None: always)."""
        self._faults.append(_Fault(name, reference, error, times))

    def count(self, name: str, reference: str | None = None) -> int:
        return sum(1 for op in self.ops
                   if op.name == name and reference in (None, op.reference))

    def counts(self) -> Counter[str]:
        return Counter(op.name for op in self.ops)

    def tag_digest(self, repository: str, tag: str) -> str | None:
        return self._repositories.get(repository, _Repository()).tags.get(tag)

    def has_blob(self, repository: str, digest: str) -> bool:
        return digest in self._repositories.get(repository, _Repository()).blobs

    # --- the port --------------------------------------------------------------------------

    async def ping(self) -> str:
        await self._enter(Op("ping"))
        return "memory"

    async def list_tags(self, repository: str) -> list[str]:
        await self._enter(Op("tags.list", repository))
        if repository not in self._repositories:
            raise NotFoundError(f"repository {repository!r} not found", registry=self.name)
        return sorted(self._repositories[repository].tags)

    async def list_catalog(self) -> list[str]:
        await self._enter(Op("catalog.list"))
        return sorted(self._repositories)

    async def catalog_pages(self) -> AsyncGenerator[list[str], None]:
        """The catalog as one page, sorted as a registry's is."""
        yield await self.list_catalog()

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        await self._enter(Op("manifest.head", repository, reference))
        manifest = self._lookup(repository, reference)
        if manifest is None:
            return None
        return Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))

    async def get_manifest(self, repository: str, reference: str) -> RawManifest:
        await self._enter(Op("manifest.get", repository, reference))
        manifest = self._lookup(repository, reference)
        if manifest is None:
            raise NotFoundError(f"manifest {repository}:{reference} not found",
                                registry=self.name)
        return manifest

    async def put_manifest(self, repository: str, reference: str, manifest: RawManifest) -> None:
        await self._enter(Op("manifest.put", repository, reference))
        if sha256_digest(manifest.raw) != manifest.digest:
            raise DigestMismatchError(f"manifest {repository}:{reference}: bytes do not hash"
                                      f" to {manifest.digest}", registry=self.name)
        if self.put_seconds:
            await self._rewrite_link(repository, reference, manifest)
        self._store(repository, reference, manifest)

    async def delete_tag(self, repository: str, tag: str) -> bool:
        await self._enter(Op("manifest.delete.tag", repository, tag))
        if not self.tag_deletes:
            return False
        if self._repositories.get(repository, _Repository()).tags.pop(tag, None) is None:
            raise NotFoundError(f"tag {repository}:{tag} not found", registry=self.name)
        return True

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """As distribution: the manifest goes from the repository with every tag on it."""
        await self._enter(Op("manifest.delete", repository, digest))
        repo = self._repositories.get(repository, _Repository())
        if digest not in repo.manifests:
            raise NotFoundError(f"manifest {repository}@{digest} not found", registry=self.name)
        repo.manifests.discard(digest)
        repo.tags = {tag: d for tag, d in repo.tags.items() if d != digest}

    async def list_referrers(
        self, repository: str, digest: str
    ) -> tuple[RawManifest, IndexManifest] | None:
        await self._enter(Op("referrers.list", repository, digest))
        return None  # as distribution 2.8: no Referrers API (the fallback tags serve)

    async def head_blob(self, repository: str, digest: str) -> int | None:
        await self._enter(Op("blob.head", repository, digest))
        if not self.has_blob(repository, digest):
            return None
        return len(self._blobs[digest])

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        session = await self.start_upload(repository, digest, mount_from=from_repository)
        if session is None:
            return True
        await self.cancel_upload(session)
        return False

    async def start_upload(
        self, repository: str, digest: str, *, mount_from: str | None
    ) -> UploadSession | None:
        name = "blob.mount" if mount_from is not None else "blob.upload.start"
        await self._enter(Op(name, repository, digest))
        if mount_from is not None and self.has_blob(mount_from, digest):
            self._repository(repository).blobs.add(digest)
            return None
        location = f"/uploads/{next(self._ids)}"
        self._uploads[location] = repository
        return UploadSession(repository, location)

    async def cancel_upload(self, session: UploadSession) -> None:
        await self._enter(Op("blob.upload.cancel", session.repository, session.location))
        self._uploads.pop(session.location, None)

    @asynccontextmanager
    async def open_blob(self, repository: str, digest: str) -> AsyncIterator[BlobReader]:
        await self._enter(Op("blob.get", repository, digest))
        if not self.has_blob(repository, digest):
            raise NotFoundError(f"blob {digest} in {repository} not found", registry=self.name)
        yield _Reader(self._blobs[digest], self._chunk)

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
        if session is None:
            session = await self.start_upload(repository, digest, mount_from=None)
            assert session is not None
        try:
            await self._enter(Op("blob.upload", repository, digest))
            verifier = DigestVerifier.for_digest(digest)
            parts = []
            async for chunk in chunks:
                verifier.update(chunk)
                parts.append(chunk)
            if verifier.digest != digest or (size is not None and verifier.size != size):
                raise DigestMismatchError(f"blob upload to {repository} abandoned: the bytes"
                                          f" hash to {verifier.digest}, not {digest}")
        finally:
            self._uploads.pop(session.location, None)  # committed or abandoned: gone either way
        self._blobs[digest] = b"".join(parts)
        self._repository(repository).blobs.add(digest)

    # --- inside ----------------------------------------------------------------------------

    async def _enter(self, op: Op) -> None:
        """Record `op`, run the hook, raise an injected fault; a checkpoint, as I/O is."""
        self.ops.append(op)
        if self.before is not None:
            self.before(op)
        await trio.lowlevel.checkpoint()
        delay = self.delays.get((op.name, op.reference))
        if delay:
            await trio.sleep(delay)
        for fault in self._faults:
            if fault.name == op.name and fault.reference in (None, op.reference):
                if fault.times is not None:
                    if fault.times == 0:
                        continue
                    fault.times -= 1
                raise fault.error()

    async def _rewrite_link(self, repository: str, reference: str, manifest: RawManifest) -> None:
        """`put_seconds` of a PUT: it reads the links of what it names, rewrites its own."""
        put = _Put(repository, manifest.digest,
                   frozenset(d.digest for d in _needs(manifest, self.name)))
        for other in self._puts:
            if other.repository == repository and other.digest in put.names:
                put.torn_by = other.digest
            if other.repository == repository and put.digest in other.names:
                other.torn_by = put.digest
        self._puts.append(put)
        try:
            await trio.sleep(self.put_seconds)
        finally:
            self._puts.remove(put)
        if put.torn_by is not None:
            self.torn.append((put.digest, put.torn_by))
            raise RegistryError(f"manifest {repository}:{reference}: DIGEST_INVALID, a manifest"
                                " it names was being rewritten", registry=self.name, status=400,
                                codes=("DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"))

    def _repository(self, repository: str) -> _Repository:
        return self._repositories.setdefault(repository, _Repository())

    def _lookup(self, repository: str, reference: str) -> RawManifest | None:
        repo = self._repositories.get(repository)
        if repo is None:
            return None
        digest = reference if ":" in reference else repo.tags.get(reference)
        if digest is None or digest not in repo.manifests:
            return None
        return self._manifests[digest]

    def _store(self, repository: str, reference: str, manifest: RawManifest) -> None:
        """Store as distribution does: only when the repository holds what it points at."""
        if ":" in reference and reference != manifest.digest:
            raise DigestMismatchError(f"manifest pushed as {reference} hashes to"
                                      f" {manifest.digest}", registry=self.name)
        repo = self._repository(repository)
        missing = [d.digest for d in _needs(manifest, self.name)
                   if d.digest not in repo.blobs and d.digest not in repo.manifests]
        if missing:
            raise RegistryError(f"manifest {repository}:{reference}: MANIFEST_BLOB_UNKNOWN"
                                f" {missing[0]}", registry=self.name, status=400,
                                codes=("MANIFEST_BLOB_UNKNOWN",))
        self._manifests[manifest.digest] = manifest
        repo.manifests.add(manifest.digest)
        if ":" not in reference:
            repo.tags[reference] = manifest.digest


def _needs(manifest: RawManifest, registry: str) -> tuple[Descriptor, ...]:
    parsed = parse_manifest(manifest, registry=registry)
    if isinstance(parsed, ImageManifest):
        return parsed.blobs
    return parsed.manifests

