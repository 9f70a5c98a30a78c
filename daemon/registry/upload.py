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

import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import trio

from ..base.errors import (
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    RegsyncError,
    RemoteServerError,
    UploadRefusedError,
)
from ..oci.digest import DigestVerifier, read_hashed
from ..oci.reference import quoted_path
from ..oci.types import UploadSession
from .download import head_blob
from .session import Call, Session, push
from .streams import Check, Parts, hashed, held_back

_log = logging.getLogger(__name__)

#: part size of a chunked upload (raised to the registry's OCI-Chunk-Min-Length): each part is
#: a round trip, so not small; each streams through, so memory stays at one read chunk
PART_SIZE = 8 * 1024 * 1024
#: answers to a one-piece PUT that mean "not in one piece": try the chunked upload
_REFUSED = frozenset({413})
_OCTETS = (("Content-Type", "application/octet-stream"),)
#: the best-effort DELETE of an abandoned upload gets this long, even when we are being cancelled
_ABANDON_TIMEOUT = 10.0


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
    source = Parts(hashed(chunks, verifier, size, check))
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


async def start_upload(
    s: Session, repository: str, digest: str, *, mount_from: str | None
) -> UploadSession | None:
    """One POST: a mount of `digest` from `mount_from` (201: None, the blob is in
    `repository` now) or, as the registry's answer to a mount it cannot do or a plain
    start, an upload session (202)."""
    reply = await s.send(start_call(repository, digest, mount_from))
    if mount_from is not None and reply.status == 201:
        return None
    location = reply.header("location")
    if not location:
        raise RemoteServerError(
            f"blob upload to {repository}: the registry sent no upload Location",
            registry=s.registry,
            status=reply.status,
        )
    return UploadSession(repository, location, chunk_min_length(reply.header("oci-chunk-min-length")))


async def upload_blob(
    s: Session,
    repository: str,
    digest: str,
    size: int | None,
    chunks: AsyncIterator[bytes],
    *,
    session: UploadSession | None,
    chunk_size: int,
    chunked: bool,
) -> None:
    """Upload into `session` (else a new one), committing only if the bytes hash to `digest`
    and number `size`; on a mismatch or any failure the session is deleted, never committed.

    Size known: small blobs (one `chunk_size` chunk) are read and checked, then sent in a
    retried PUT; larger ones stream in one PUT whose last chunk waits for the digest check, or
    with `chunked` go as PATCH parts, then an empty PUT. Size unknown: one streamed PATCH, then
    the PUT.

    Raises:
        DigestMismatchError: the bytes are not what `digest`/`size` promise.
        UploadRefusedError: the registry refused the body in one piece (retry `chunked`).
    """
    try:
        verifier = DigestVerifier.for_digest(digest)
    except ValueError as exc:
        raise DigestMismatchError(f"cannot upload blob: {exc}", registry=s.registry) from None
    if session is None:
        session = await start_upload(s, repository, digest, mount_from=None)
        assert session is not None  # a plain start always answers with a session
    check = functools.partial(_check_upload, repository=repository, digest=digest, size=size)
    try:
        if size is not None and size <= chunk_size:  # one piece, even `chunked`
            body = await read_hashed(chunks, verifier, size)
            check(verifier)
            await _commit(s, session, digest, body)
        elif size is not None and not chunked:
            await put_streamed(s, session, digest, size, chunks, verifier, check)
        elif size is not None:
            session = await patch_parts(s, session, digest, size, chunks, verifier, check)
            check(verifier)
            await _commit(s, session, digest, b"")
        else:
            session = await _patch_stream(s, session, digest, chunks, verifier, check)
            check(verifier)
            await _commit(s, session, digest, b"")
    except BaseException:
        await abandon(s, session.location, repository)
        raise


async def _patch_stream(
    s: Session, session: UploadSession, digest: str, chunks: AsyncIterator[bytes],
    verifier: DigestVerifier, check: Check,
) -> UploadSession:
    """The whole body in one streamed PATCH (size unknown: no Content-Length to promise)."""
    repository = session.repository
    patch = Call(
        "PATCH",
        session.location,
        "blob.upload.chunk",
        f"upload of blob {digest} to {repository}",
        scopes=push(repository),
        repository=repository,
        headers=_OCTETS,
    )
    reply = await s.send_streaming(patch, hashed(chunks, verifier, None, check))
    # the session's state moved on with the PATCH: only the new Location can delete it
    location = reply.header("location") or session.location
    return replace(session, location=location)


async def _commit(s: Session, session: UploadSession, digest: str, body: bytes) -> None:
    repository = session.repository
    call = Call(
        "PUT",
        session.location,
        "blob.upload",
        f"upload of blob {digest} to {repository}",
        scopes=push(repository),
        repository=repository,
        headers=_OCTETS,
        params=(("digest", digest),),
        content=body,
    )
    try:
        reply = await s.send(call)
    except NotFoundError:
        # An earlier attempt may have committed with its answer lost on the way (reset,
        # timeout): the retry then finds the session gone. The registry checked the digest
        # when it committed, so a blob that is there now is the upload done.
        if await head_blob(s, repository, digest) is not None:
            return
        raise
    echoed(reply.header("docker-content-digest"), digest, repository, s.registry)


def _check_upload(
    verifier: DigestVerifier, *, repository: str, digest: str, size: int | None
) -> None:
    if verifier.digest == digest and (size is None or verifier.size == size):
        return
    promised = f"{digest} ({size} bytes)" if size is not None else digest
    # No registry named: this one did nothing wrong, the bytes handed in did. The caller
    # knows where they came from (the engine names the source registry).
    raise DigestMismatchError(
        f"blob upload to {repository} abandoned, nothing committed: the source promised"
        f" {promised} but sent {verifier.size} bytes hashing to {verifier.digest}",
    )


async def abandon(s: Session, location: str, repository: str) -> None:
    """Best effort DELETE of an upload session, even while being cancelled."""
    call = Call(
        "DELETE",
        location,
        "blob.upload.cancel",
        f"cancel of an upload to {repository}",
        scopes=push(repository),
        repository=repository,
    )
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + _ABANDON_TIMEOUT
        try:
            await s.send_once(call)
        except RegsyncError as exc:
            _log.debug("registry %r: upload not cancelled: %s", s.registry, exc)
