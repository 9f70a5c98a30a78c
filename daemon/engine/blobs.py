"""Getting one blob to a target repository at the least cost, once per digest per run.

Round trips, not bytes, bound a sync over a WAN. A blob already in the target repository costs
one HEAD. A new one: the HEAD, one POST that mounts it (from a repository of the target registry
this run saw holding it, or from the source repository when both sides are one registry) or
starts the upload, then one PUT streaming the source's bytes with their size as Content-Length,
the digest checked as they pass. Only the source GET and that PUT hold a blob slot
(`global.concurrency`): two round trips, where there were three or four (POST, PATCH, PUT).

Why the HEAD stays, though distribution answers a mount "from" the target repository itself
with 201 when the blob is there (one request for presence and upload start): that mount is a
write. distribution re-links the blob into the repository on every mount (measured on 2.8 with
filesystem storage: readers HEADing the blob meanwhile got 500s, 65 of 486) and sends a mount
event, so every re-sync would rewrite every shared layer under the mirror's clients.

Registries refusing a large body in one request get a chunked upload (`UploadMemory` learns it
once per registry). Tags that share a layer wait for the one transfer in flight instead of
starting their own. A transfer holds one of the daemon's blob slots, shared fairly between
source registries (engine/slots.py), and fails as temporary when it stays under the throughput
floor (engine/throughput.py), so no registry can stall the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum

import trio

from ..base.errors import DigestMismatchError, RegsyncError, UploadRefusedError
from ..oci.types import Descriptor, UploadSession
from ..registry.retry import RetryPolicy, retrying
from .side import Side
from .slots import BlobSlots
from .throughput import Floor, Meter, too_slow, under_floor
from .upload_memory import UploadMemory


class BlobOutcome(str, Enum):
    PRESENT = "present"
    MOUNTED = "mounted"
    COPIED = "copied"


#: target repositories a holding remembers, the latest: enough for the tags in flight, and a
#: shared base layer in a glob's thousands of repositories does not hold a name per repository
HOLDERS_KEPT = 64

#: blobs a run remembers, the most recently used (a shared base layer is used by every tag, so
#: it stays; a tag's own layer ages out): a run's memory does not grow with its distinct blobs.
#: A forgotten blob costs one target HEAD when it is met again, or an upload where a mount was
HOLDINGS_KEPT = 4096


@dataclass(slots=True)
class _Holding:
    """Where a digest is known to live on one target registry, and the transfer in flight."""

    #: the latest HOLDERS_KEPT repositories known to hold it, oldest first (a repository it
    #: forgot is asked again with a HEAD: correct, one request more)
    repositories: dict[str, None] = field(default_factory=dict)
    busy: trio.Event | None = None
    #: why the transfer into a repository failed: the tags waiting for it fail the same way
    #: instead of each repeating every retry
    failed: dict[str, RegsyncError] = field(default_factory=dict)


class BlobMover:
    """Moves blobs for a whole run; shared by every rule and tag of that run."""

    def __init__(
        self,
        *,
        slots: BlobSlots,
        floor: Floor,
        retry: RetryPolicy,
        on_bytes: Callable[[int], None],
        on_outcome: Callable[[BlobOutcome, int], None],
        memory: UploadMemory | None = None,
    ) -> None:
        self._slots = slots
        self._floor = floor
        self._memory = memory or UploadMemory()
        self._retry = retry
        self._on_bytes = on_bytes
        self._on_outcome = on_outcome
        self._holdings: dict[tuple[str, str], _Holding] = {}
        #: blobs the engine read already (an image's config, for its platform): sent as they are
        self._bodies: dict[str, bytes] = {}
        #: the locks of manifests being placed and written, with how many tags hold or wait for
        #: each: a lock goes when the last one leaves (a run over 5,000 tags kept 5,000 locks)
        self._placing: _LockTable = {}
        self._writing: _LockTable = {}

    def manifest_lock(self, target: str, repository: str,
                      reference: str) -> AbstractAsyncContextManager[None]:
        """Held while one manifest (by digest) is placed at the target, its blobs and all, so
        two tags of a run do not both copy it; or while a referrers tag is read, merged and
        written, so no merge loses another's entry. A referrers tag's lock may be held while
        taking a digest's, never the other way round, and a digest's never while taking
        another digest's: no cycle, no deadlock."""
        return _held(self._placing, (target, repository, reference))

    @asynccontextmanager
    async def writing(
        self, target: str, repository: str, digests: Iterable[str]
    ) -> AsyncIterator[None]:
        """Held around one manifest PUT (and the HEAD deciding it): the write locks of the
        manifest's digest and of every manifest it names. distribution 2.8's filesystem
        storage rewrites a manifest's link file in place on every PUT, even of a manifest it
        has, and an index PUT reads its children's links: an index PUT beside a PUT of its
        child (by digest for one tag, under its own tag for another) failed with 400
        DIGEST_INVALID. Taken in one sorted batch, innermost (nothing is acquired while they
        are held), so no two holders wait on each other."""
        async with AsyncExitStack() as stack:
            for digest in sorted(set(digests)):
                await stack.enter_async_context(_held(self._writing, (target, repository, digest)))
            yield

    @property
    def floor(self) -> Floor:
        """The throughput floor, for other reads from a source (an image config)."""
        return self._floor

    async def ensure(
        self,
        blob: Descriptor,
        *,
        source: Side,
        target: Side,
        body: bytes | None = None,
    ) -> BlobOutcome:
        """Make `blob` present in the target repository; `body`, when given, is its content
        already read and verified (no GET then). Raises the RegsyncError that stopped it."""
        holding = self._holding((target.registry.name, blob.digest))
        while holding.busy is not None:  # another tag is moving this digest: reuse its result
            await holding.busy.wait()
        if target.repository in holding.repositories:
            self._on_outcome(BlobOutcome.PRESENT, blob.size)
            return BlobOutcome.PRESENT
        if target.repository in holding.failed:
            raise holding.failed[target.repository]
        holding.busy = trio.Event()
        if body is not None:  # a digest names its bytes: any transfer of it may use them
            self._bodies[blob.digest] = body
        try:
            # the whole transfer again only for what no request could replay (a body broken
            # mid-stream, the throughput floor): a request's own spent retries stay spent
            outcome = await retrying(self._retry, lambda: self._attempt(
                blob, holding, source, target
            ), describe=f"copy blob {blob.digest}")
            _remember(holding.repositories, target.repository)
        except RegsyncError as exc:
            holding.failed[target.repository] = exc
            raise
        finally:
            holding.busy.set()
            holding.busy = None
            if body is not None:
                self._bodies.pop(blob.digest, None)
        self._on_outcome(outcome, blob.size)
        return outcome

    def _holding(self, key: tuple[str, str]) -> _Holding:
        """The holding of `key`, now the most recently used; the least recently used idle one
        is forgotten beyond HOLDINGS_KEPT (one in use never is: tags wait on it)."""
        holding = self._holdings.pop(key, None) or _Holding()
        self._holdings[key] = holding
        if len(self._holdings) > HOLDINGS_KEPT:
            for old, idle in self._holdings.items():
                if idle.busy is None and old != key:
                    del self._holdings[old]
                    break
        return holding

    async def _attempt(
        self,
        blob: Descriptor,
        holding: _Holding,
        source: Side,
        target: Side,
    ) -> BlobOutcome:
        """A HEAD (a read: a blob already there costs nothing else); then a POST that mounts it
        from a holder or starts the upload, and one streamed PUT; only the PUT (with the
        source's GET) holds a blob slot."""
        port = target.registry
        if await port.head_blob(target.repository, blob.digest) is not None:
            return BlobOutcome.PRESENT
        mount_from = _mount_source(holding, source, target)
        session = await port.start_upload(target.repository, blob.digest, mount_from=mount_from)
        if session is None:
            return BlobOutcome.MOUNTED
        moving = False
        try:
            async with self._slots.slot(source.registry.name):
                moving = True  # from here on the transfer owns the session
                await self._watched(blob, source, target, session)
        except BaseException:
            if not moving:  # stopped while waiting for a slot
                await port.cancel_upload(session)
            raise
        return BlobOutcome.COPIED

    async def _watched(
        self,
        blob: Descriptor,
        source: Side,
        target: Side,
        session: UploadSession,
    ) -> None:
        """The transfer, cancelled as soon as it falls under the throughput floor."""
        with under_floor(self._floor, lambda rate: too_slow(
                source.registry.name, blob.digest, rate, to=target.registry.name)) as meter:
            await self._transfer(blob, source, target, session, meter)

    async def _transfer(
        self,
        blob: Descriptor,
        source: Side,
        target: Side,
        session: UploadSession,
        meter: Meter,
    ) -> None:
        in_parts = self._memory.in_parts(target.registry.name)
        try:
            await self._stream(blob, source, target, session, in_parts, meter)
        except UploadRefusedError:
            if in_parts:
                raise
            # learnt once per registry; the refused session is gone: a new one, in parts
            self._memory.refuses_one_piece(target.registry.name)
            await self._stream(blob, source, target, None, True, meter)

    async def _stream(
        self,
        blob: Descriptor,
        source: Side,
        target: Side,
        session: UploadSession | None,
        in_parts: bool,
        meter: Meter,
    ) -> None:
        pending = session  # ours to cancel until upload_blob takes it over
        port = target.registry
        try:
            known = self._bodies.get(blob.digest)
            if known is not None:
                pending = None
                await port.upload_blob(target.repository, blob.digest, len(known),
                                       _one(known), session=session, chunked=in_parts)
                self._on_bytes(len(known))
                meter.moved(len(known))
                return
            async with source.registry.open_blob(source.repository, blob.digest) as reader:
                if reader.size is not None and blob.size and reader.size != blob.size:
                    raise _size_mismatch(source.registry.name, blob, reader.size)

                async def counted() -> AsyncIterator[bytes]:
                    async for chunk in reader.chunks():
                        self._on_bytes(len(chunk))
                        meter.moved(len(chunk))
                        yield chunk

                pending = None
                await port.upload_blob(
                    target.repository, blob.digest, blob.size or None, counted(),
                    session=session, chunked=in_parts,
                )
        except DigestMismatchError as exc:
            if exc.registry is None:  # the bytes we passed on were wrong: the source's
                exc.registry = source.registry.name
            raise
        finally:
            if pending is not None:
                await port.cancel_upload(pending)


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _mount_source(holding: _Holding, source: Side, target: Side) -> str | None:
    """Where the POST mounts from: a repository of the target registry that this run saw holding
    the blob, else the source repository when both sides are one registry (a copy for free);
    None: a plain upload. (A 202 then is the upload session itself: nothing is asked twice.)"""
    for other in reversed(holding.repositories):  # the latest: the likeliest to be there still
        if other != target.repository:
            return other
    if target.registry.name == source.registry.name and source.repository != target.repository:
        return source.repository
    return None


def _remember(holders: dict[str, None], repository: str) -> None:
    """`repository` holds the blob now; the oldest beyond HOLDERS_KEPT is forgotten."""
    holders.pop(repository, None)
    holders[repository] = None
    if len(holders) > HOLDERS_KEPT:
        del holders[next(iter(holders))]


def _size_mismatch(registry: str, blob: Descriptor, actual: int) -> DigestMismatchError:
    return DigestMismatchError(
        f"blob {blob.digest} is {actual} bytes at the source, but its manifest says {blob.size}",
        registry=registry,
    )


#: run-wide locks by (target registry, repository, reference), each with its count of holders
_LockTable = dict[tuple[str, str, str], tuple[trio.Lock, list[int]]]


@asynccontextmanager
async def _held(table: _LockTable, key: tuple[str, str, str]) -> AsyncIterator[None]:
    """Hold `key`'s lock of `table`, made on first use and dropped when its last holder or
    waiter leaves, so the table stays as small as the work in flight."""
    lock, users = table.setdefault(key, (trio.Lock(), [0]))
    users[0] += 1
    try:
        async with lock:
            yield
    finally:
        users[0] -= 1
        if not users[0]:
            del table[key]
