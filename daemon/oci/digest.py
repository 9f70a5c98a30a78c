"""Content digests: parse them, compute them, and verify streamed bytes against them.

Every manifest and blob regsync moves is addressed by its digest; verifying as bytes pass is what
lets a copy refuse content a registry (or the network) corrupted, without holding whole blobs in
memory. Pure: no I/O of its own (`read_hashed` reads the iterator it is given).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

from ..base.errors import DigestMismatchError

#: hex length of each supported algorithm's digest (OCI image-spec "registered algorithms")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


def sha256_digest(data: bytes) -> str:
    """The canonical "sha256:<hex>" digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_digest(digest: str) -> tuple[str, str]:
    """Split "algorithm:hex" and check it, so a malformed digest fails before any request.

    Raises:
        ValueError: unknown algorithm, wrong hex length, or characters outside lowercase hex.
    """
    algorithm, sep, encoded = digest.partition(":")
    shown = digest if len(digest) <= 140 else digest[:140] + "..."
    if not sep:
        raise ValueError(f"invalid digest {shown!r}: expected 'algorithm:hex'")
    length = _HEX_LENGTHS.get(algorithm)
    if length is None:
        raise ValueError(
            f"invalid digest {shown!r}: unsupported algorithm {algorithm[:20]!r}"
            " (supported: sha256, sha512)"
        )
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise ValueError(
            f"invalid digest {shown!r}: {algorithm} needs {length} lowercase hex characters"
        )
    return algorithm, encoded


class DigestVerifier:
    """Hashes a stream chunk by chunk and checks the result against the digest it was fetched by.

    The algorithm is fixed up front (hashing cannot be restarted once bytes have gone past);
    `for_digest` picks it from the expected digest, which is the usual way to build one.
    """

    __slots__ = ("_algorithm", "_hash", "_size")

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _HEX_LENGTHS:
            raise ValueError(
                f"unsupported digest algorithm {algorithm!r} (supported: sha256, sha512)"
            )
        self._algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self._size = 0

    @classmethod
    def for_digest(cls, expected: str) -> DigestVerifier:
        """A verifier using the algorithm `expected` names (ValueError if it is malformed)."""
        algorithm, _ = parse_digest(expected)
        return cls(algorithm)

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next chunk; chunk boundaries do not matter."""
        self._hash.update(chunk)
        self._size += memoryview(chunk).nbytes

    @property
    def digest(self) -> str:
        """Digest of everything fed so far (can be read at any time; hashing continues)."""
        return f"{self._algorithm}:{self._hash.hexdigest()}"

    @property
    def size(self) -> int:
        """Number of bytes fed so far."""
        return self._size

    def verify(
        self, expected: str, expected_size: int | None = None, *, registry: str | None = None
    ) -> None:
        """Check the bytes fed so far against `expected` (and `expected_size` when given).

        Raises:
            DigestMismatchError: the size or the digest differs.
            ValueError: `expected` is malformed or uses another algorithm than this verifier.
        """
        algorithm, _ = parse_digest(expected)
        if algorithm != self._algorithm:
            raise ValueError(
                f"verifier hashes with {self._algorithm} but the expected digest is {algorithm}"
            )
        if expected_size is not None and expected_size != self._size:
            raise DigestMismatchError(
                f"content of {expected} has {self._size} bytes, expected {expected_size}",
                registry=registry,
            )
        actual = self.digest
        if actual != expected:
            raise DigestMismatchError(
                f"content addressed as {expected} hashes to {actual}", registry=registry
            )

    def __repr__(self) -> str:
        return f"DigestVerifier({self._algorithm!r}, size={self._size})"


async def read_hashed(chunks: AsyncIterator[bytes], verifier: DigestVerifier, size: int) -> bytes:
    """A small blob's bytes, hashed by `verifier`; reading stops once more than `size` arrived
    (then `verifier.verify` says the size is wrong)."""
    parts: list[bytes] = []
    async for chunk in chunks:
        verifier.update(chunk)
        parts.append(chunk)
        if verifier.size > size:
            break
    return b"".join(parts)
