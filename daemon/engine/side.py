"""One end of a rule, as the engine passes it around: a port and a repository on it."""

from __future__ import annotations

from dataclasses import dataclass

from ..oci.port import RegistryPort


@dataclass(frozen=True, slots=True)
class Side:
    """One end of a rule: a registry client and a repository on it (never one without the
    other: a repository name means nothing without its registry)."""

    registry: RegistryPort
    repository: str
