"""Images and indexes pushed straight into an in-memory port (daemon/oci/memory.py), and the
two registries the engine's in-memory tests copy between: no sockets, no builds."""

from __future__ import annotations

import json

from regsync.daemon.oci.memory import MemoryPort
from regsync.daemon.oci.types import OCI_INDEX, OCI_MANIFEST, RawManifest
from regsync.daemon.settings import RegistrySettings, RetrySettings
from regsync.daemon.values.platform import Platform

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
NO_RETRY = RetrySettings(max_attempts=1, initial_interval=0.0, max_interval=0.0)
#: the settings of the two registries the tests copy between (their ports are in memory)
REGISTRIES = {n: RegistrySettings(n, f"http://{n}.test") for n in ("src", "dst")}


def push_image(port: MemoryPort, repo: str, layers: list[bytes], *, tag: str | None = None,
               arch: str = "amd64") -> RawManifest:
    config = port.add_blob(repo, json.dumps({"architecture": arch, "os": "linux"}).encode())
    blobs = [port.add_blob(repo, layer) for layer in layers]
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": LAYER, "digest": b.digest, "size": b.size} for b in blobs],
    }).encode()
    return port.add_manifest(repo, body, OCI_MANIFEST, tag)


def push_index(port: MemoryPort, repo: str, tag: str,
               children: list[tuple[RawManifest, Platform]]) -> RawManifest:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": c.media_type, "digest": c.digest, "size": len(c.raw),
         "platform": {"os": p.os, "architecture": p.architecture}} for c, p in children
    ]}).encode()
    return port.add_manifest(repo, body, OCI_INDEX, tag)
