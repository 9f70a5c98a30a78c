"""Blob reads over HTTP: HEAD for presence, a streamed GET for the bytes.

Redirects are followed (blob storage often lives elsewhere); credentials never follow to
another host (registry/auth.py). Getting the answer is retried by the session; reading the body
is not: a transfer that breaks mid-stream is retried whole by the engine (engine/blobs.py), the
one level that can replay it. The caller verifies the digest as bytes pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import trio

from ..base.errors import NotFoundError
from ..oci.port import BlobReader
from ..oci.reference import quoted_path
from .boundary import map_exceptions
from .session import Call, Session, pull


async def head_blob(s: Session, repository: str, digest: str) -> int | None:
    """The blob's size if `repository` has it, else None."""
    call = Call(
        "HEAD",
        quoted_path(repository, "blobs", digest),
        "blob.head",
        f"blob {digest} in {repository}",
        scopes=pull(repository),
        repository=repository,
        follow_redirects=True,
    )
    try:
        reply = await s.send(call)
    except NotFoundError:
        return None
    return int(reply.header("content-length") or 0)


@asynccontextmanager
async def open_blob(
    s: Session, repository: str, digest: str, chunk_size: int
) -> AsyncIterator[BlobReader]:
    """Stream a blob in chunks of `chunk_size` (redirects followed)."""
    call = Call(
        "GET",
        quoted_path(repository, "blobs", digest),
        "blob.get",
        f"blob {digest} in {repository}",
        scopes=pull(repository),
        repository=repository,
        follow_redirects=True,
        # layers are compressed already; a transparently re-encoded body would also hide
        # the true size
        headers=(("Accept-Encoding", "identity"),),
    )
    response = await s.open_stream(call)
    try:
        yield _BlobStream(response, s, chunk_size, call.what)
    finally:
        with trio.CancelScope(shield=True):
            await response.aclose()


class _BlobStream:
    """An open blob download (the `BlobReader` the engine reads)."""

    def __init__(
        self, response: httpx.Response, session: Session, chunk_size: int, what: str
    ) -> None:
        length = response.headers.get("content-length")
        self.size: int | None = int(length) if length and length.isdigit() else None
        self._response = response
        self._session = session
        self._chunk_size = chunk_size
        self._what = what

    async def chunks(self) -> AsyncIterator[bytes]:
        s = self._session
        with map_exceptions(
            registry=s.registry, host=s.host, timeout=s.timeout, what=self._what
        ):
            async for chunk in self._response.aiter_bytes(self._chunk_size):
                yield chunk
