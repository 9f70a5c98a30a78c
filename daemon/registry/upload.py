"""Blob uploads at few round trips, never committing bytes that miss their digest.

Measured against distribution 2.8.2 (the test bed's registry) before relying on it:

    POST uploads/?mount=D&from=R      201 when R holds D (R = the target repository itself
                                      included), else 202 and an upload session; every 201
                                      re-links D into the repository (a write: see engine/blobs)
    PUT <session>?digest=D, body with  201, committed in one request; a body hashing to anything
      Content-Length (streamed)        else is 400 DIGEST_INVALID; a body cut short is 500 and
                                      the session is gone, nothing committed
    PATCH <session>, Content-Range     appends one part (416 if the range does not follow on)

So a new blob's bytes go in one PUT that streams the source's bytes as they arrive and hashes
them on the way; the final chunk is held back until the whole blob hashed right, so on a
mismatch the body ends short and the registry cannot commit (the session is then deleted too).
Registries that refuse a one-piece body (413) get the chunked upload instead: PATCH parts of at
least their `OCI-Chunk-Min-Length`, then an empty PUT once the digest checked out. A size that
is not known gets one streamed PATCH, then the PUT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import trio

from ..errors import DigestMismatchError, RegistryError, RegsyncError, UploadRefusedError
from ..oci.digest import DigestVerifier
from ..oci.reference import quoted_path
from ..oci.types import UploadSession
from .transport import Call, Session

#: chunks at least this big are hashed in a worker thread (hashlib releases the GIL), so other
#: transfers keep the trio thread busy meanwhile
THREAD_HASH_MIN = 256 * 1024
#: part size of a chunked upload (raised to the registry's OCI-Chunk-Min-Length): each part is
#: a round trip, so not small; each streams through, so memory stays at one read chunk
PART_SIZE = 8 * 1024 * 1024
#: answers to a one-piece PUT that mean "not in one piece": try the chunked upload
_REFUSED = frozenset({413})
_OCTETS = (("Content-Type", "application/octet-stream"),)

Check = Callable[[DigestVerifier], None]


def push(repository: str) -> tuple[str, ...]:
    return (f"repository:{repository}:pull,push",)


def start_call(repository: str, digest: str, mount_from: str | None) -> Call:
    """POST uploads/, with a mount of `digest` from `mount_from` when given."""
    scopes = push(repository)
    params: tuple[tuple[str, str], ...] = ()
    if mount_from is not None:
        params = (("mount", digest), ("from", mount_from))
        if mount_from != repository:
            scopes = (*scopes, f"repository:{mount_from}:pull")
    what = (
        f"mount of blob {digest} from {mount_from} into {repository}"
        if mount_from is not None
        else f"start of a blob upload to {repository}"
    )
    key = "blob.mount" if mount_from is not None else "blob.upload.start"
    return Call("POST", quoted_path(repository, "blobs", "uploads") + "/", key, what, scopes=scopes,
                repository=repository, params=params)


def chunk_min_length(value: str | None) -> int:
    """OCI-Chunk-Min-Length as a number of bytes; anything odd means no minimum. Capped at 1 GiB
    so a hostile registry cannot make one part hold a huge read."""
    if value is None or not value.strip().isdigit():
        return 0
    return min(int(value.strip()), 1 << 30)


async def put_streamed(
    s: Session, upload: UploadSession, digest: str, size: int, chunks: AsyncIterator[bytes],
    verifier: DigestVerifier, check: Check,
) -> None:
    """Commit in one PUT whose body streams `chunks`; the last chunk is sent only once all of
    them hashed to `digest`.

    Raises:
        UploadRefusedError: the registry wants the body in parts (the caller retries chunked).
        DigestMismatchError: the bytes are not what `digest` and `size` promise.
    """
    call = Call(
        "PUT", upload.location, "blob.upload", f"upload of blob {digest} to {upload.repository}",
        scopes=push(upload.repository), repository=upload.repository,
        headers=(*_OCTETS, ("Content-Length", str(size))), params=(("digest", digest),),
    )
    try:
        reply = await s.send_streaming(call, held_back(chunks, verifier, size, check))
    except RegistryError as exc:
        if exc.status in _REFUSED:
            raise UploadRefusedError(
                f"blob upload to {upload.repository}: a body of {size} bytes in one request"
                f" was refused ({exc.status})", registry=s.registry, status=exc.status,
            ) from None
        raise
    echoed(reply.header("docker-content-digest"), digest, upload.repository, s.registry)


async def patch_parts(
    s: Session, upload: UploadSession, digest: str, size: int, chunks: AsyncIterator[bytes],
    verifier: DigestVerifier, check: Check,
) -> UploadSession:
    """Send the bytes as PATCH parts with Content-Range; the session as it stands after them."""
    part = max(PART_SIZE, upload.min_chunk)
    source = _Parts(hashed(chunks, verifier, size, check))
    offset = 0
    while offset < size:
        length = min(part, size - offset)
        call = Call(
            "PATCH", upload.location, "blob.upload.chunk",
            f"upload of blob {digest} to {upload.repository}", scopes=push(upload.repository),
            repository=upload.repository,
            headers=(*_OCTETS, ("Content-Length", str(length)),
                     ("Content-Range", f"{offset}-{offset + length - 1}")),
        )
        reply = await s.send_streaming(call, source.take(length, lambda: check(verifier)))
        location = reply.header("location")
        if location:  # the session's state moved on: only the new Location continues it
            upload = UploadSession(upload.repository, location, upload.min_chunk)
        offset += length
    await source.expect_end(lambda: check(verifier))
    return upload


def echoed(echo: str | None, digest: str, repository: str, registry: str) -> None:
    if echo and echo != digest:
        raise DigestMismatchError(
            f"blob upload to {repository}: the registry stored {echo}, not {digest}",
            registry=registry,
        )


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


class _Parts:
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
