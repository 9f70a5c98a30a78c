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
from regsync.daemon.cli.console import summary
from regsync.daemon.config import parse_config
from regsync.daemon.engine.events import Counters, Event, LogEvent, Outcome, TagResult, discard
from regsync.daemon.engine.plan import Verb
from regsync.daemon.engine.report import RunReport
from regsync.daemon.engine.run import Run, open_ports, sync
from support.fakeregistry import Answer, FakeRegistry, Served
from support.images import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    manifest_digest,
    push_image,
    random_layer,
    sha256,
)
from support.proxy import CountingProxy, Fault, fail_times
from support.registry import RegistryServer
from support.syncrun import load, make_config, rule

pytestmark = pytest.mark.integration

SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def config_text(
    src: str | RegistryServer | CountingProxy, dst: str, *, repo: str = "app",
    attempts: int = 2, timeout: str = "20s", target_repo: str = "copy",
    limits: dict[str, object] | None = None,
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
        } | ({"limits": limits} if limits else {}),
        "registries": {"src": source, "dst": {"url": dst}},
        "sync_rules": [{
            "name": "r", "enabled": True,
            "source": {"registry": "src", "repository": repo},
            "target": {"registry": "dst", "repository": target_repo},
        }],
    })


async def run_sync(text: str) -> tuple[RunReport, list[Event]]:
    config = parse_config(text, source="bad.yaml")
    events: list[Event] = []

    def sink(event: Event, counters: Counters) -> None:
        events.append(event)

    return await sync(config.enabled_rules(), config.registries, config.global_, sink=sink, keep_results=True), events


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


# hostile sources: names, listings and bodies (issue 10) ------------------------------------
TRAVERSAL = "../../../../v2/victim/app/manifests/latest"
ESCAPES = "red\x1b[31m\x1b[2Jtag"


async def test_listed_names_are_data_never_paths(registry2: RegistryServer) -> None:
    victim = push_image(registry2, "victim/app", "latest", layers=[random_layer(3000, seed=40)])
    setup = len(registry2.access_log())
    with FakeRegistry() as fake:
        fake.add_image("evil", "1.0", random_layer(2000, seed=41))
        # what the source answers where httpx's `..` normalisation lands, as a real one would
        fake.add_image("victim/app", "latest", random_layer(2000, seed=42))
        fake.add_image("evil", "latest", random_layer(2000, seed=42))
        fake.tags["evil"] = ["1.0", TRAVERSAL, ESCAPES]
        report, events = await run_sync(
            config_text(fake.url, registry2.url, repo="evil", target_repo="mirror/evil"))
        asked = [path for _, path in fake.requests]
    outside = [e for e in registry2.access_log()[setup:]
               if e.path != "/v2/" and not e.path.startswith("/v2/mirror/evil/")]
    assert outside == [], outside
    assert manifest_digest(registry2, "victim/app", "latest") == victim  # untouched
    assert all(p == "/v2/" or p.startswith("/v2/evil/") for p in asked), asked
    by_tag = {r.tag: r for r in report.results}
    assert by_tag["1.0"].outcome is Outcome.COPIED
    shown = "red\\x1b[31m\\x1b[2Jtag"
    for tag in (TRAVERSAL, shown):  # reported, escaped, as skipped: the run itself is fine
        assert by_tag[tag].outcome is Outcome.SKIPPED, by_tag
        assert by_tag[tag].error_kind == "invalid-name"
    assert report.ok and report.counters.tags_total == 3
    warnings = [e.message for e in events if isinstance(e, LogEvent) and e.level == "warning"]
    assert any(shown in w and "2 listed names are not valid tags" in w for w in warnings), warnings
    assert not any("\x1b" in str(e) for e in events)
    assert "invalid: 2 listed names" in summary(report)


def tag_pages(fake: FakeRegistry, per_page: int, link: str | None) -> None:
    """Tag pages without end: each page has `per_page` new tags and a Link to the next."""
    def hook(method: str, path: str, query: str) -> Answer | None:
        if not path.endswith("/tags/list"):
            return None
        page = int(query.partition("page=")[2] or 0)
        body = json.dumps({"tags": [f"t{page}-{i}" for i in range(per_page)]}).encode()
        headers = {"Link": link.format(page=page + 1) + '; rel="next"'} if link else {}
        return 200, Served(body, "application/json"), headers

    fake.hook = hook


@pytest.mark.parametrize(
    ("per_page", "limits", "words"),
    [(100, {"max_tags": 1000}, "more than 1000 names"),
     (100, {"max_listing_bytes": 10_000}, "larger than 10000 bytes"),
     (0, {}, "an empty page links to a next one")],
    ids=["tags", "bytes", "empty-pages"],
)
async def test_endless_listing_stops_at_its_bound(
    registry2: RegistryServer, per_page: int, limits: dict[str, object], words: str
) -> None:
    with FakeRegistry() as fake:
        tag_pages(fake, per_page, "</v2/app/tags/list?n=100&page={page}>")
        report, _ = await run_sync(config_text(fake.url, registry2.url, limits=limits))
        pages = fake.count("GET", "/tags/list")
    result = only_failure(report, "limit" if limits else "remote")
    assert result.tag == "" and words in result.reason, result.reason
    if limits:
        assert f"global.limits.{next(iter(limits))}" in result.reason, result.reason
    assert pages <= 12, pages  # stopped at the bound, not at 5 GB
    assert_nothing_tagged(registry2)


@pytest.mark.parametrize("where", ["other-port", "other-scheme", "other-path"])
async def test_link_off_the_listing_is_not_followed(registry2: RegistryServer, where: str) -> None:
    with FakeRegistry() as fake, FakeRegistry() as other:
        other.hook = lambda m, p, q: _answer(400, b"other host's words: SECRET-BODY")
        link = {"other-port": f"<{other.url}/v2/app/tags/list?page={{page}}>",
                "other-scheme": f"<{fake.url.replace('http:', 'https:')}/v2/app/tags/list>",
                "other-path": "</v2/victim/app/tags/list?page={page}>"}[where]
        tag_pages(fake, 10, link)
        report, _ = await run_sync(config_text(fake.url, registry2.url))
        assert other.requests == [] and fake.count("GET", "/tags/list") == 1
    result = only_failure(report, "remote")
    assert "not followed" in result.reason or "another path" in result.reason, result.reason
    assert "SECRET-BODY" not in result.reason
    assert_nothing_tagged(registry2)


def _answer(status: int, body: bytes) -> Answer:
    return status, Served(body, "application/json"), {}


DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_MANIFEST = b'{"schemaVersion": 2, "layers": ' + DEEP + b"}"


@pytest.mark.parametrize(
    ("path", "answer", "kind", "words"),
    [("/tags/list", _answer(200, b'{"tags": ' + DEEP + b"}"), "remote", "nested deeper than 64"),
     ("/tags/list", _answer(400, b'{"errors": ' + DEEP + b"}"), "registry", "HTTP 400"),
     ("/manifests/", (200, Served(DEEP_MANIFEST, "application/json"),
                      {"Docker-Content-Digest": sha256(DEEP_MANIFEST)}),
      "remote", "nested deeper than 64")],
    ids=["listing", "error-body", "manifest"],
)
async def test_deeply_nested_json_is_a_clear_error(
    registry2: RegistryServer, path: str, answer: Answer, kind: str, words: str
) -> None:
    with FakeRegistry() as fake:
        fake.tags["app"] = ["1.0"]
        fake.hook = lambda m, p, q: answer if path in p else None
        report, _ = await run_sync(config_text(fake.url, registry2.url))
    result = only_failure(report, kind)
    assert words in result.reason, result.reason
    assert_nothing_tagged(registry2)


async def test_error_body_reaches_the_user_escaped_and_capped(registry2: RegistryServer) -> None:
    body = json.dumps({"errors": [{"code": "\x1b[2J" + "X" * 20_000,  # within the 64 KiB read
                                   "message": "\x1b]0;owned\x07" + "m" * 30_000}]})
    with FakeRegistry() as fake:
        fake.hook = lambda m, p, q: _answer(400, body.encode()) if "/tags/" in p else None
        report, events = await run_sync(config_text(fake.url, registry2.url))
    result = only_failure(report, "registry")
    assert "\x1b" not in result.reason and "\x07" not in result.reason
    assert "\\x1b" in result.reason and len(result.reason) < 2000, len(result.reason)
    assert not any("\x1b" in str(e) for e in events)


async def test_a_digest_header_is_data_never_a_path(registry2: RegistryServer) -> None:
    headers = {"Docker-Content-Digest": "sha256:../../../victim/app/manifests/latest"}
    with FakeRegistry() as fake:
        fake.tags["app"] = ["1.0"]
        fake.hook = lambda m, p, q: (200, Served(b"", "application/json"), headers) if (
            m == "HEAD" and "/manifests/" in p) else None
        report, _ = await run_sync(config_text(fake.url, registry2.url))
        asked = [p for _, p in fake.requests]
    result = only_failure(report, "invalid-name")
    assert "the registry's Docker-Content-Digest 'sha256:../../../victim/app/manifests/latest'" \
        " is not a digest; not requested" in result.reason, result.reason
    assert all(p == "/v2/" or p.startswith("/v2/app/") for p in asked), asked
    assert_nothing_tagged(registry2)


async def test_a_target_index_that_cannot_be_read_fails_only_its_line_of_a_plan() -> None:
    """Under a platform filter the dry run reads a target index (one GET) to tell whether it is
    our rewrite of the source's. A target that answers that tag's HEAD but not the GET fails that
    tag's line, as the copy fails that tag, and the plan goes on (the error once escaped the
    whole plan)."""
    with FakeRegistry() as source, FakeRegistry() as target:
        image = source.add_image("app", "2.0", b"layer")
        size = len(source.manifests[("app", image)].body)

        def index(os: str) -> bytes:
            return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": DOCKER_MANIFEST, "digest": image, "size": size,
                 "platform": {"os": os, "architecture": "amd64"}}]}).encode()

        source.add_manifest("app", "1.0", index("linux"), OCI_INDEX)
        ours = target.add_manifest("copy", "1.0", index("windows"), OCI_INDEX)
        gone = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "gone"}]}).encode()

        def no_get(method: str, path: str, query: str) -> Answer | None:
            if method == "GET" and path.endswith(f"/manifests/{ours}"):
                return 404, Served(gone, "application/json"), {}
            return None

        target.hook = no_get
        config = load(make_config({"src": source.url, "dst": target.url},
                                  [rule("app", "copy", architectures=["amd64"])]))
        async with open_ports(config.registries, config.global_, ["src", "dst"]) as ports:
            selection, plans = await Run(config.global_, config.registries, sink=discard,
                                         ports=ports).plan(config.rules[0])
    assert selection.kept == ("1.0", "2.0")
    assert [(p.tag, p.action) for p in plans] == [("1.0", Verb.FAIL), ("2.0", Verb.COPY)]
    assert plans[0].reason.startswith("not-found: "), plans[0].reason
    assert plans[1].reason == "new tag"
