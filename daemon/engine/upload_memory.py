"""What the daemon learnt about each target registry's blob uploads, kept for every later run.

A blob of known size goes in one PUT streaming its body. A registry that refuses that for a
large body (413, e.g. a body limit in front of it) answers so once; from then on its large
blobs go in parts (PATCH with Content-Range, at least its OCI-Chunk-Min-Length each), so the
refusal costs one wasted request per registry per daemon, not one per blob.

Keyed by the registry's configured name; in memory only.
"""

from __future__ import annotations


class UploadMemory:
    """Per-registry verdicts shared by every run of one daemon (or of one `regsyncd once`)."""

    def __init__(self) -> None:
        self._in_parts: set[str] = set()

    def in_parts(self, registry: str) -> bool:
        return registry in self._in_parts

    def refuses_one_piece(self, registry: str) -> None:
        self._in_parts.add(registry)
