"""Retries at one level: a persistently failing source sees `max_attempts` requests, not its
square. The source is the real HTTP client behind `httpx.MockTransport` (its requests retry),
the target the in-memory port, the copy the engine's (its transfers retry): virtual time."""

from __future__ import annotations

import json

import httpx
import trio
from regsync.daemon.engine.events import Outcome, discard
from regsync.daemon.engine.run import Run
from regsync.daemon.oci.digest import sha256_digest
from regsync.daemon.oci.memory import MemoryPort
from regsync.daemon.oci.types import OCI_MANIFEST
from regsync.daemon.registry.client import RegistryClient
from regsync.daemon.registry.retry import RetryPolicy
from regsync.daemon.settings import (
    Endpoint,
    GlobalSettings,
    RegistrySettings,
    RetrySettings,
    SyncRule,
)

ATTEMPTS = 3
CONFIG = b'{"architecture": "amd64", "os": "linux"}'
LAYER = b"a layer the source never manages to send"
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": sha256_digest(CONFIG), "size": len(CONFIG)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha256_digest(LAYER), "size": len(LAYER)}],
}).encode()


class Source:
    """Tags, the manifest and its config answer; every GET of the layer is a 503."""

    def __init__(self) -> None:
        self.blob_gets: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v2/app/tags/list":
            return httpx.Response(200, json={"name": "app", "tags": ["1"]})
        if path in ("/v2/app/manifests/1", f"/v2/app/manifests/{sha256_digest(MANIFEST)}"):
            return httpx.Response(200, content=MANIFEST, headers={
                "Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256_digest(MANIFEST)})
        if path == f"/v2/app/blobs/{sha256_digest(CONFIG)}" and request.method == "GET":
            return httpx.Response(200, content=CONFIG)
        if "/blobs/" in path and request.method == "GET":
            self.blob_gets.append(path.rsplit("/", 1)[1])
            return httpx.Response(503, json={"errors": [{"code": "UNAVAILABLE",
                                                         "message": "backend down"}]})
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})


async def test_a_persistently_failing_blob_get_is_tried_max_attempts_times_in_all(
    autojump_clock: trio.abc.Clock,
) -> None:
    source = Source()
    policy = RetryPolicy(max_attempts=ATTEMPTS, initial=1.0, maximum=1.0, jitter=0.0)
    settings = RegistrySettings("src", "https://src.test")
    client = RegistryClient(settings, retry=policy, timeout=60.0, credentials=None,
                            transport=httpx.MockTransport(source))
    target = MemoryPort("dst")
    rule = SyncRule("r", Endpoint("src", "app"), Endpoint("dst", "mirror/app"), referrers=False)
    retry = RetrySettings(max_attempts=ATTEMPTS, initial_interval=1.0, max_interval=1.0)
    registries = {"src": settings, "dst": RegistrySettings("dst", "http://dst.test")}
    async with client:
        report = await Run(GlobalSettings(retry=retry), registries, sink=discard,
                           ports={"src": client, "dst": target}, keep_results=True).execute([rule])
    assert [r.outcome for r in report.results] == [Outcome.FAILED]
    assert "gave up" in report.results[0].reason
    assert source.blob_gets == [sha256_digest(LAYER)] * ATTEMPTS  # not ATTEMPTS**2
    assert target.tag_digest("mirror/app", "1") is None
