"""Getting one blob to a target repository at the least cost, once per digest per run.

Order of preference: already there (HEAD) -> cross-repository mount from a repository of the same
target registry that this run saw holding it -> stream GET from the source into an upload whose
digest is checked as the bytes pass. Tags that share a layer wait for the one transfer in flight
instead of starting their own. A transfer holds one of the daemon's blob slots, shared fairly
between source registries (engine/slots.py), and fails as temporary when it stays under the
throughput floor (engine/throughput.py), so no registry can stall the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import Enum

import trio

from ..errors import DigestMismatchError, RegsyncError
from ..registry.retry import RetryPolicy, retrying
from ..registry.types import Descriptor, RegistryPort
from .slots import BlobSlots
from .throughput import Floor, Meter, too_slow, under_floor


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
        slots: BlobSlots,
        floor: Floor,
        retry: RetryPolicy,
        on_bytes: Callable[[int], None],
        on_outcome: Callable[[BlobOutcome, int], None],
    ) -> None:
        self._slots = slots
        self._floor = floor
        self._retry = retry
        self._on_bytes = on_bytes
        self._on_outcome = on_outcome
        self._holdings: dict[tuple[str, str], _Holding] = {}

    @property
    def floor(self) -> Floor:
        """The throughput floor, for other reads from a source (an image config)."""
        return self._floor

    async def ensure(
        self,
        blob: Descriptor,
        *,
        source: RegistryPort,
        source_repository: str,
        target: RegistryPort,
        target_repository: str,
    ) -> BlobOutcome:
        """Make `blob` present in the target repository. Raises the RegsyncError that stopped it."""
        holding = self._holdings.setdefault((target.name, blob.digest), _Holding())
        while holding.busy is not None:  # another tag is moving this digest: reuse its result
            await holding.busy.wait()
        if target_repository in holding.repositories:
            self._on_outcome(BlobOutcome.PRESENT, blob.size)
            return BlobOutcome.PRESENT
        if target_repository in holding.failed:
            raise holding.failed[target_repository]
        holding.busy = trio.Event()
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
        if await target.head_blob(target_repository, blob.digest) is not None:
            return BlobOutcome.PRESENT
        for other in sorted(holding.repositories):
            if await target.mount_blob(target_repository, blob.digest, other):
                return BlobOutcome.MOUNTED
        # same registry on both sides: a mount from the source repository is a copy for free
        if (
            target.name == source.name
            and source_repository != target_repository
            and await target.mount_blob(target_repository, blob.digest, source_repository)
        ):
            return BlobOutcome.MOUNTED

        async def attempt() -> None:
            async with self._slots.slot(source.name):
                await self._watched(blob, source, source_repository, target, target_repository)

        await retrying(self._retry, attempt, describe=f"copy blob {blob.digest}")
        return BlobOutcome.COPIED

    async def _watched(
        self,
        blob: Descriptor,
        source: RegistryPort,
        source_repository: str,
        target: RegistryPort,
        target_repository: str,
    ) -> None:
        """The transfer, cancelled as soon as it falls under the throughput floor."""
        with under_floor(self._floor, lambda rate: too_slow(source.name, blob.digest, rate,
                                                           to=target.name)) as meter:
            await self._transfer(blob, source, source_repository, target, target_repository,
                                 meter)

    async def _transfer(
        self,
        blob: Descriptor,
        source: RegistryPort,
        source_repository: str,
        target: RegistryPort,
        target_repository: str,
        meter: Meter,
    ) -> None:
        async with source.open_blob(source_repository, blob.digest) as reader:
            if reader.size is not None and blob.size and reader.size != blob.size:
                raise _size_mismatch(source.name, blob, reader.size)

            async def counted() -> AsyncIterator[bytes]:
                async for chunk in reader.chunks():
                    self._on_bytes(len(chunk))
                    meter.moved(len(chunk))
                    yield chunk

            try:
                await target.upload_blob(
                    target_repository, blob.digest, blob.size or None, counted()
                )
            except DigestMismatchError as exc:
                if exc.registry is None:  # the bytes we passed on were wrong: the source's
                    exc.registry = source.name
                raise


def _size_mismatch(registry: str, blob: Descriptor, actual: int) -> DigestMismatchError:
    return DigestMismatchError(
        f"blob {blob.digest} is {actual} bytes at the source, but its manifest says {blob.size}",
        registry=registry,
    )
