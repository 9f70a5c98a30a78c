"""What the daemon learnt about each target registry's blob uploads, kept for every later run.

Two facts decide how many round trips a blob costs, and both are learnt from answers, never
assumed per product:

- whether the registry mounts a blob "from" the repository that already holds it (answers 201):
  distribution 2.8 does, so one POST both checks presence and starts the upload. A registry
  that answers 202 although the blob is there would make us send it twice, so it gets a HEAD
  before every POST instead. Unknown until shown: a 202 is then checked with a HEAD, and the
  first blob this daemon commits there is probed once with such a mount (201 or 202 decides).
- whether it refuses a blob body in one request (413): then every upload goes in parts.

Keyed by the registry's configured name; in memory only (the probe costs one request).
"""

from __future__ import annotations

from enum import Enum


class SelfMount(str, Enum):
    UNKNOWN = "unknown"
    WORKS = "works"  # 201 when the repository holds the blob: the POST is the presence check
    HEAD_FIRST = "head-first"  # 202 although the blob is there: check presence with a HEAD


class UploadMemory:
    """Per-registry verdicts shared by every run of one daemon (or of one `regsyncd once`)."""

    def __init__(self) -> None:
        self._self_mount: dict[str, SelfMount] = {}
        self._probing: set[str] = set()
        self._in_parts: set[str] = set()

    def self_mount(self, registry: str) -> SelfMount:
        return self._self_mount.get(registry, SelfMount.UNKNOWN)

    def learn_self_mount(self, registry: str, verdict: SelfMount) -> None:
        """First verdict wins: one answer cannot flip a registry back and forth."""
        if self.self_mount(registry) is SelfMount.UNKNOWN:
            self._self_mount[registry] = verdict

    def claim_probe(self, registry: str) -> bool:
        """True for the one caller that should probe a registry whose verdict is unknown."""
        if self.self_mount(registry) is not SelfMount.UNKNOWN or registry in self._probing:
            return False
        self._probing.add(registry)
        return True

    def release_probe(self, registry: str) -> None:
        self._probing.discard(registry)

    def in_parts(self, registry: str) -> bool:
        return registry in self._in_parts

    def refuses_one_piece(self, registry: str) -> None:
        self._in_parts.add(registry)
