"""Getting one blob to a target repository at the least cost, once per digest per run.

Round trips on the target, not bytes, bound a sync over a WAN, so a blob costs one POST that
mounts it (from a repository of the target registry this run saw holding it, from the source
repository when both sides are one registry, else from the target repository itself: 201 means
it is there) or starts an upload, then, only if needed, one PUT streaming the source's bytes,
their digest checked as they pass. A blob already there costs one request, a new one two.
Registries that answer that self-mount with 202 although the blob is there get a HEAD first, and
those refusing one-piece bodies get chunked uploads (`UploadMemory` learns both once). The blob
slot (`global.concurrency`) is held only while bytes move. Tags that share a layer wait for the
one transfer in flight instead of starting their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import Enum

import trio

from ..errors import DigestMismatchError, RegsyncError, UploadRefusedError
from ..registry.retry import RetryPolicy, retrying
from ..registry.types import Descriptor, RegistryPort, UploadSession
from .upload_memory import SelfMount, UploadMemory


class BlobOutcome(str, Enum):
    PRESENT = "present"
    MOUNTED = "mounted"
    COPIED = "copied"


@dataclass(slots=True)
class _Holding:
    """Where a digest is known to live on one target registry, and the transfer in flight."""

    repositories: set[str] = field(default_factory=set)
    busy: trio.Event | None = None
    #: why the transfer into a repository failed: the tags waiting for it fail the same way
    #: instead of each repeating every retry
    failed: dict[str, RegsyncError] = field(default_factory=dict)


class BlobMover:
    """Moves blobs for a whole run; shared by every rule and tag of that run."""

    def __init__(
        self,
        *,
        limiter: trio.CapacityLimiter,
        retry: RetryPolicy,
        on_bytes: Callable[[int], None],
        on_outcome: Callable[[BlobOutcome, int], None],
        memory: UploadMemory | None = None,
    ) -> None:
        self._limiter = limiter
        self._memory = memory or UploadMemory()
        self._retry = retry
        self._on_bytes = on_bytes
        self._on_outcome = on_outcome
        self._holdings: dict[tuple[str, str], _Holding] = {}
        #: blobs the engine read already (an image's config, for its platform): sent as they are
        self._bodies: dict[str, bytes] = {}

    async def ensure(
        self,
        blob: Descriptor,
        *,
        source: RegistryPort,
        source_repository: str,
        target: RegistryPort,
        target_repository: str,
        body: bytes | None = None,
    ) -> BlobOutcome:
        """Make `blob` present in the target repository; `body`, when given, is its content
        already read and verified (no GET then). Raises the RegsyncError that stopped it."""
        holding = self._holdings.setdefault((target.name, blob.digest), _Holding())
        while holding.busy is not None:  # another tag is moving this digest: reuse its result
            await holding.busy.wait()
        if target_repository in holding.repositories:
            self._on_outcome(BlobOutcome.PRESENT, blob.size)
            return BlobOutcome.PRESENT
        if target_repository in holding.failed:
            raise holding.failed[target_repository]
        holding.busy = trio.Event()
        if body is not None:  # a digest names its bytes: any transfer of it may use them
            self._bodies[blob.digest] = body
        try:
            outcome = await self._ensure(
                blob, holding, source, source_repository, target, target_repository
            )
            holding.repositories.add(target_repository)
        except RegsyncError as exc:
            holding.failed[target_repository] = exc
            raise
        finally:
            holding.busy.set()
            holding.busy = None
            if body is not None:
                self._bodies.pop(blob.digest, None)
        self._on_outcome(outcome, blob.size)
        return outcome

    async def _ensure(
        self,
        blob: Descriptor,
        holding: _Holding,
        source: RegistryPort,
        source_repository: str,
        target: RegistryPort,
        target_repository: str,
    ) -> BlobOutcome:
        async def attempt() -> BlobOutcome:
            return await self._attempt(
                blob, holding, source, source_repository, target, target_repository
            )

        return await retrying(self._retry, attempt, describe=f"copy blob {blob.digest}")

    async def _attempt(
        self,
        blob: Descriptor,
        holding: _Holding,
        source: RegistryPort,
        source_repository: str,
        target: RegistryPort,
        target_repository: str,
    ) -> BlobOutcome:
        """At most two requests on the target: a mount-or-start POST, then the upload's PUT."""
        verdict = self._memory.self_mount(target.name)
        if verdict is SelfMount.HEAD_FIRST and (
            await target.head_blob(target_repository, blob.digest) is not None
        ):
            return BlobOutcome.PRESENT
        mount_from = _mount_source(holding, source.name, source_repository, target.name,
                                   target_repository, verdict)
        session = await target.start_upload(target_repository, blob.digest, mount_from=mount_from)
        if session is None:
            if mount_from != target_repository:
                return BlobOutcome.MOUNTED
            self._memory.learn_self_mount(target.name, SelfMount.WORKS)
            return BlobOutcome.PRESENT
        moving = False
        try:
            async with self._limiter:
                # asked only once a slot is ours: meanwhile another blob may have settled it
                if await self._there_after_all(blob, target, target_repository, mount_from):
                    await target.cancel_upload(session)
                    return BlobOutcome.PRESENT
                moving = True  # from here on the transfer owns the session
                await self._transfer(blob, source, source_repository, target, target_repository,
                                     session)
        except BaseException:
            if not moving:  # stopped while waiting for a slot
                await target.cancel_upload(session)
            raise
        if verdict is SelfMount.UNKNOWN:
            await self._probe(blob, target, target_repository)
        return BlobOutcome.COPIED

    async def _there_after_all(
        self, blob: Descriptor, target: RegistryPort, repository: str, mount_from: str | None
    ) -> bool:
        """After a 202: is the blob in the repository anyway? Asked only where the answer did
        not already say (an untested registry's self-mount, a refused cross-repository mount),
        so no blob is sent twice."""
        verdict = self._memory.self_mount(target.name)
        if mount_from is None or (mount_from == repository and verdict is SelfMount.WORKS):
            return False
        if await target.head_blob(repository, blob.digest) is None:
            return False
        if mount_from == repository:
            self._memory.learn_self_mount(target.name, SelfMount.HEAD_FIRST)
        return True

    async def _probe(self, blob: Descriptor, target: RegistryPort, repository: str) -> None:
        """Once per registry: mount a blob we just committed from its own repository; 201 means
        the POST alone tells presence from now on, 202 means a HEAD must come first."""
        if not self._memory.claim_probe(target.name):
            return
        try:
            session = await target.start_upload(repository, blob.digest, mount_from=repository)
            if session is None:
                self._memory.learn_self_mount(target.name, SelfMount.WORKS)
                return
            self._memory.learn_self_mount(target.name, SelfMount.HEAD_FIRST)
            await target.cancel_upload(session)
        except RegsyncError:
            pass  # a probe is an optimisation: the next commit there asks again
        finally:
            self._memory.release_probe(target.name)

    async def _transfer(
        self,
        blob: Descriptor,
        source: RegistryPort,
        source_repository: str,
        target: RegistryPort,
        target_repository: str,
        session: UploadSession,
    ) -> None:
        in_parts = self._memory.in_parts(target.name)
        try:
            await self._stream(blob, source, source_repository, target, target_repository,
                               session, in_parts)
        except UploadRefusedError:
            if in_parts:
                raise
            # learnt once per registry; the refused session is gone: a new one, in parts
            self._memory.refuses_one_piece(target.name)
            await self._stream(blob, source, source_repository, target, target_repository,
                               None, True)

    async def _stream(
        self,
        blob: Descriptor,
        source: RegistryPort,
        source_repository: str,
        target: RegistryPort,
        target_repository: str,
        session: UploadSession | None,
        in_parts: bool,
    ) -> None:
        pending = session  # ours to cancel until upload_blob takes it over
        try:
            known = self._bodies.get(blob.digest)
            if known is not None:
                pending = None
                await target.upload_blob(target_repository, blob.digest, len(known),
                                         _one(known), session=session, chunked=in_parts)
                self._on_bytes(len(known))
                return
            async with source.open_blob(source_repository, blob.digest) as reader:
                if reader.size is not None and blob.size and reader.size != blob.size:
                    raise _size_mismatch(source.name, blob, reader.size)

                async def counted() -> AsyncIterator[bytes]:
                    async for chunk in reader.chunks():
                        self._on_bytes(len(chunk))
                        yield chunk

                pending = None
                await target.upload_blob(
                    target_repository, blob.digest, blob.size or None, counted(),
                    session=session, chunked=in_parts,
                )
        except DigestMismatchError as exc:
            if exc.registry is None:  # the bytes we passed on were wrong: the source's
                exc.registry = source.name
            raise
        finally:
            if pending is not None:
                await target.cancel_upload(pending)


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _mount_source(
    holding: _Holding, source: str, source_repository: str, target: str, target_repository: str,
    verdict: SelfMount,
) -> str | None:
    """Where the POST mounts from: a repository of the target registry that this run saw holding
    the blob, the source repository when both sides are one registry (a copy for free), else
    the target repository itself (its 201 is the presence check), unless that registry needs
    the HEAD it already had."""
    others = sorted(holding.repositories - {target_repository})
    if others:
        return others[0]
    if target == source and source_repository != target_repository:
        return source_repository
    return None if verdict is SelfMount.HEAD_FIRST else target_repository


def _size_mismatch(registry: str, blob: Descriptor, actual: int) -> DigestMismatchError:
    return DigestMismatchError(
        f"blob {blob.digest} is {actual} bytes at the source, but its manifest says {blob.size}",
        registry=registry,
    )
