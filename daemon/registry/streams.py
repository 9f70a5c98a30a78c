"""Byte streams hashed on the way, for uploads that never commit bytes missing their digest.

`hashed` passes chunks on after the verifier saw them; `held_back` also keeps the chunk that
completes the promised size until the whole blob checked out, so on a mismatch the registry
receives fewer bytes than Content-Length and commits nothing; `Parts` cuts one stream into
exactly-sized pieces (the PATCH bodies of a chunked upload). Large chunks are hashed in a worker
thread (hashlib releases the GIL), so other transfers keep the trio thread busy meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import trio

from ..base.errors import RegsyncError
from ..oci.digest import DigestVerifier

#: chunks at least this big are hashed in a worker thread
THREAD_HASH_MIN = 256 * 1024

Check = Callable[[DigestVerifier], None]


async def _update(verifier: DigestVerifier, chunk: bytes) -> None:
    if len(chunk) >= THREAD_HASH_MIN:
        await trio.to_thread.run_sync(verifier.update, chunk)
    else:
        verifier.update(chunk)


async def hashed(
    chunks: AsyncIterator[bytes], verifier: DigestVerifier, size: int | None, check: Check
) -> AsyncIterator[bytes]:
    """Pass chunks on after the verifier saw them; stop at the first byte beyond `size`."""
    async for chunk in chunks:
        await _update(verifier, chunk)
        if size is not None and verifier.size > size:
            check(verifier)
        yield chunk


async def held_back(
    chunks: AsyncIterator[bytes], verifier: DigestVerifier, size: int, check: Check
) -> AsyncIterator[bytes]:
    """Like `hashed`, but the chunk that completes `size` bytes goes out only once the whole
    blob checked out, and a source that ends short fails before the body is complete: either
    way the registry receives fewer bytes than Content-Length and commits nothing."""
    async for chunk in chunks:
        await _update(verifier, chunk)
        if verifier.size >= size:
            check(verifier)
        yield chunk
    if verifier.size != size:
        check(verifier)


class Parts:
    """Exactly-sized pieces of one stream, each itself a stream (one PATCH body each)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    async def take(self, length: int, short: Callable[[], None]) -> AsyncIterator[bytes]:
        while length > 0:
            if not self._left:
                try:
                    self._left = await anext(self._chunks)
                except StopAsyncIteration:
                    short()  # raises: the source ended before the size it promised
                    raise RegsyncError("blob source ended early") from None
            piece, self._left = self._left[:length], self._left[length:]
            length -= len(piece)
            yield piece

    async def expect_end(self, extra: Callable[[], None]) -> None:
        if self._left:
            extra()
        async for _ in self._chunks:
            extra()
