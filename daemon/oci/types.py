"""The content model's values: media types, platforms, descriptors, manifests as served.

Shared by every backend of the port (`oci/port.py`) and the engine; pure values, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..values.platform import Platform

# Media types ---------------------------------------------------------------------------------
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
#: Accept header for manifest requests, preferred first
MANIFEST_ACCEPT = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A pointer to content: what a manifest lists, and what HEAD tells about a manifest."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class RawManifest:
    """A manifest exactly as the registry served it; digest already verified against `raw`."""

    raw: bytes
    media_type: str
    digest: str


@dataclass(frozen=True, slots=True)
class UploadSession:
    """A blob upload the registry started: where to send the bytes, and its smallest part."""

    repository: str
    location: str
    min_chunk: int = 0  # OCI-Chunk-Min-Length: parts of a chunked upload, the last one aside
