"""Registries that answer badly: each gives a clear per-tag (or per-rule) failure, never a crash,
and nothing is tagged at the target.

A clear message names the registry (as configured: 'src') and what was being fetched. Answers
the real registry can give come from it (through a fault-injecting proxy where needed); the
fake registry serves only what distribution refuses to store (not JSON, schema 1, over 4 MiB).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx
import pytest
import yaml
from regsync.daemon.config import parse_config
from regsync.daemon.engine.events import Counters, Event, Outcome, TagResult
from regsync.daemon.engine.run import RunReport, sync
from support.fakeregistry import FakeRegistry
from support.images import (
    OCI_MANIFEST,
    manifest_digest,
    push_image,
    random_layer,
    sha256,
)
from support.proxy import CountingProxy, Fault, fail_times
from support.registry import RegistryServer

pytestmark = pytest.mark.integration

SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def config_text(
    src: str | RegistryServer | CountingProxy, dst: str, *, repo: str = "app",
    attempts: int = 2, timeout: str = "20s",
) -> str:
    source: dict[str, Any] = {"url": src if isinstance(src, str) else src.url}
    if not isinstance(src, str) and src.password is not None:
        source |= {"username": src.username, "password": src.password}
    return yaml.safe_dump({
        "version": "1.0",
        "global": {
            "concurrency": 2,
            "retry": {"max_attempts": attempts, "initial_interval": "10ms",
                      "max_interval": "50ms"},
            "timeout": timeout,
        },
        "registries": {"src": source, "dst": {"url": dst}},
        "sync_rules": [{
            "name": "r", "enabled": True,
            "source": {"registry": "src", "repository": repo},
            "target": {"registry": "dst", "repository": "copy"},
        }],
    })


async def run_sync(text: str) -> tuple[RunReport, list[Event]]:
    config = parse_config(text, source="bad.yaml")
    events: list[Event] = []

    def sink(event: Event, counters: Counters) -> None:
        events.append(event)

    return await sync(config, config.enabled_rules(), sink=sink), events


def only_failure(report: RunReport, kind: str) -> TagResult:
    """The run's single result: a failure of `kind` naming the source registry."""
    (result,) = report.results
    assert result.outcome is Outcome.FAILED, result
    assert result.error_kind == kind, result
    assert "registry 'src'" in result.reason, result.reason
    return result


def assert_nothing_tagged(target: RegistryServer) -> None:
    resp = httpx.get(f"{target.url}/v2/copy/tags/list")
    assert resp.status_code == 404 or not resp.json()["tags"], resp.text
    assert target.count("PUT", r"/manifests/") == 0


def has_blob(server: RegistryServer, repo: str, digest: str) -> bool:
    return httpx.head(f"{server.url}/v2/{repo}/blobs/{digest}").status_code == 200


def push_app(server: RegistryServer, seed: int) -> tuple[str, bytes]:
    """app:1.0, one layer; (manifest digest, layer bytes)."""
    layer = random_layer(50_000, seed=seed)
    return push_image(server, "app", "1.0", layers=[layer]), layer


# answers only the fake can give -----------------------------------------------------------
def schema1_manifest() -> bytes:
    return json.dumps({
        "schemaVersion": 1, "name": "app", "tag": "1.0", "architecture": "amd64",
        "fsLayers": [{"blobSum": sha256(b"x")}], "history": [{"v1Compatibility": "{}"}],
        "signatures": [{"header": {"alg": "ES256"}, "signature": "c2ln", "protected": "e30"}],
    }).encode()


@pytest.mark.parametrize(
    ("body", "media_type", "kind", "words"),
    [
        (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",',
         OCI_MANIFEST, "remote", ("invalid manifest", "not valid JSON")),
        (b"<definitely not json>", "application/json", "remote", ("invalid manifest",)),
        (schema1_manifest(), SCHEMA1_SIGNED, "unsupported", ("schema 1",)),
        (schema1_manifest(), "application/json", "unsupported", ("schema 1",)),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                     "annotations": {"pad": "x" * (4 * 1024 * 1024 + 10)}}).encode(),
         OCI_MANIFEST, "unsupported", ("larger than 4 MiB",)),
    ],
    ids=["truncated-json", "not-json", "schema1-signed", "schema1-as-json", "oversize"],
)
async def test_unusable_manifest_fails_the_tag_clearly(
    registry2: RegistryServer, body: bytes, media_type: str, kind: str, words: tuple[str, ...]
) -> None:
    with FakeRegistry() as fake:
        digest = fake.add_manifest("app", "1.0", body, media_type)
        report, _ = await run_sync(config_text(fake.url, registry2.url))
        gets = fake.count("GET", r"/manifests/")
    result = only_failure(report, kind)
    assert result.tag == "1.0"
    for word in words:
        assert word in result.reason, result.reason
    assert digest in result.reason or "app@" in result.reason, result.reason
    assert gets == 1  # not temporary: no retry
    assert_nothing_tagged(registry2)


# the real registry, its answers spoiled on the way -------------------------------------------
async def test_manifest_digest_mismatch(registry: RegistryServer, registry2: RegistryServer) -> None:
    digest, _ = push_app(registry, seed=1)
    corrupt = fail_times(Fault.corrupt(), 100, "GET", r"/manifests/sha256:")
    with CountingProxy(registry, fault=corrupt) as proxy:
        report, _ = await run_sync(config_text(proxy.url, registry2.url))
    result = only_failure(report, "digest-mismatch")
    assert f"manifest app@{digest}" in result.reason and "hashing to sha256:" in result.reason
    assert_nothing_tagged(registry2)


async def test_blob_digest_mismatch(registry: RegistryServer, registry2: RegistryServer) -> None:
    _, layer = push_app(registry, seed=2)
    corrupt = fail_times(Fault.corrupt(), 100, "GET", "/blobs/" + sha256(layer))
    with CountingProxy(registry, fault=corrupt) as proxy:
        report, _ = await run_sync(config_text(proxy.url, registry2.url))
    result = only_failure(report, "digest-mismatch")  # the source lied: it is named, not dst
    assert sha256(layer) in result.reason and "nothing committed" in result.reason
    assert "'dst'" not in result.reason
    assert_nothing_tagged(registry2)
    assert not has_blob(registry2, "copy", sha256(layer))


async def test_html_error_page(registry: RegistryServer, registry2: RegistryServer) -> None:
    push_app(registry, seed=3)
    html = fail_times(Fault.html_page(502), 100, "*", r"/manifests/")
    with CountingProxy(registry, fault=html) as proxy:
        report, _ = await run_sync(config_text(proxy.url, registry2.url))
        heads = proxy.count("HEAD", r"/manifests/")
    result = only_failure(report, "remote")
    assert "HTML page" in result.reason and "manifest app:1.0" in result.reason
    assert "HTTP 502" in result.reason
    assert heads == 2  # a 502 is temporary: retried up to max_attempts
    assert_nothing_tagged(registry2)


async def test_unknown_repository(registry: RegistryServer, registry2: RegistryServer) -> None:
    push_app(registry, seed=4)
    report, _ = await run_sync(config_text(registry, registry2.url, repo="no/such/repo"))
    result = only_failure(report, "not-found")
    assert result.tag == ""  # the rule failed: it has no tags to report
    assert "repository 'no/such/repo' not found on registry 'src'" in result.reason
    assert_nothing_tagged(registry2)


async def test_redirect_loop(registry: RegistryServer, registry2: RegistryServer) -> None:
    _, layer = push_app(registry, seed=5)
    path = f"/v2/app/blobs/{sha256(layer)}"
    loop = fail_times(Fault.redirect(path), 10_000, "GET", "/blobs/" + sha256(layer))
    with CountingProxy(registry, fault=loop) as proxy:
        report, _ = await run_sync(config_text(proxy.url, registry2.url))
        hops = proxy.count("GET", "/blobs/" + sha256(layer))
    result = only_failure(report, "remote")
    assert "redirected too many times" in result.reason and sha256(layer) in result.reason
    assert 2 <= hops <= 2 * 25  # bounded: two attempts of at most ~20 redirects
    assert_nothing_tagged(registry2)


@pytest.mark.parametrize("auth", ["basic", "token"])
async def test_blob_redirect_to_another_host_carries_no_credentials(
    registry_factory: Any, registry2: RegistryServer, auth: str
) -> None:
    private = registry_factory(auth)
    public = registry_factory()  # "blob storage": another host:port holding the same bytes
    digest, _ = push_app(private, seed=6)
    assert push_app(public, seed=6)[0] == digest
    with CountingProxy(public) as storage:
        def redirect(request: Any) -> Fault | None:
            if request.method == "GET" and "/blobs/sha256:" in request.path:
                return Fault.redirect(storage.url + request.path)
            return None

        with CountingProxy(private, fault=redirect) as front:
            report, events = await run_sync(config_text(front, registry2.url))
            front_auth = [r.headers.get("Authorization", "") for r in front.requests]
        redirected = storage.requests_matching("GET", r"/blobs/sha256:")

    assert [r.outcome for r in report.results] == [Outcome.COPIED], report.results
    assert manifest_digest(registry2, "copy", "1.0") == digest
    assert len(redirected) >= 2  # config and layer came from the other host...
    for request in redirected:  # ...which never saw a credential
        assert "authorization" not in {k.lower() for k in request.headers}, request.path
    scheme = "Basic " if auth == "basic" else "Bearer "
    assert any(h.startswith(scheme) for h in front_auth)  # the registry itself did
    assert private.password is not None
    assert all(private.password not in str(e) for e in events)


@pytest.mark.parametrize("what", ["blob", "manifest"])
async def test_stall_mid_body_beyond_the_timeout(
    registry: RegistryServer, registry2: RegistryServer, what: str
) -> None:
    _, layer = push_app(registry, seed=7)
    path = "/blobs/" + sha256(layer) if what == "blob" else r"/manifests/sha256:"
    stall = fail_times(Fault.stalled(30.0, after=100), 100, "GET", path)
    with CountingProxy(registry, fault=stall) as proxy:
        start = time.monotonic()
        report, _ = await run_sync(config_text(proxy.url, registry2.url, timeout="1s"))
        elapsed = time.monotonic() - start
        stalled = proxy.count("GET", path)
    result = only_failure(report, "network")
    assert "timed out" in result.reason and "1s" in result.reason, result.reason
    assert (sha256(layer) if what == "blob" else "manifest app@") in result.reason
    assert stalled == 2 and 1.9 < elapsed < 8.0, (stalled, elapsed)
    assert_nothing_tagged(registry2)


async def test_429_retry_after_is_honoured(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    digest, _ = push_app(registry, seed=8)
    busy = fail_times(Fault.http_status(429, retry_after=1), 2, "GET", r"/manifests/")
    with CountingProxy(registry, fault=busy) as proxy:
        report, _ = await run_sync(config_text(proxy.url, registry2.url, attempts=3))
        gets = proxy.requests_matching("GET", r"/manifests/")
    assert [r.outcome for r in report.results] == [Outcome.COPIED], report.results
    assert manifest_digest(registry2, "copy", "1.0") == digest
    assert len(gets) == 3  # two refusals, then the answer
    gaps = [b.time - a.time for a, b in itertools.pairwise(gets)]
    assert all(0.95 <= gap < 3.0 for gap in gaps), gaps  # backoff alone would be ~10 ms
