"""Sync through flaky networks and failing registries: exact copies, or clean per-tag failures.

Two real registries, each behind a fault-injecting `CountingProxy`. With a seeded ~10 % of
requests failing on both sides (5xx, 429 with Retry-After, resets and truncation mid-body,
dropped connections, slow answers) a multi-repo corpus still arrives exact; with every source
request failing, each tag fails with the kind of failure and the target is not touched.

The target is checked from its storage directory, not through regsync: every blob file hashes to
its name, every manifest the target stored (tagged or not) resolves with all its children and
blobs, so a tag written before its content would be caught.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from regsync.daemon.engine.events import Outcome
from support.images import (
    CorpusSpec,
    build_corpus,
    fetch_manifest,
    manifest_digest,
    push_index,
    random_layer,
    sha256,
    skopeo_digest,
)
from support.proxy import DEFAULT_MIX, CountingProxy, Fault, RandomFaults
from support.registry import RegistryServer
from support.syncrun import make_config, rule, run_sync

pytestmark = pytest.mark.integration

ATTEMPTS = 6
RETRY = {"max_attempts": ATTEMPTS, "initial_interval": "10ms", "max_interval": "100ms"}
SPEC = CorpusSpec(
    repos=3, tags_per_repo=3, shared_layers=2, shared_layer_size=200_000,
    unique_layer_size=30_000, large_layer_size=3 * 1024 * 1024, repo_prefix="corpus/app",
    seed=11,
)
#: for runs that are meant to fail: no large layer, fewer tags
SMALL = CorpusSpec(repos=2, tags_per_repo=2, shared_layers=1, shared_layer_size=20_000,
                   unique_layer_size=5_000, repo_prefix="corpus/app", seed=12)


def mirror_config(src: str, dst: str, repos: Sequence[str], *, retry: dict[str, Any]) -> dict[str, Any]:
    """Every repo to mirror/<repo>."""
    rules = [rule(repo, f"mirror/{repo}", name=f"rule-{repo}") for repo in repos]
    return make_config({"src": src, "dst": dst}, rules, retry=retry)


def build_source(server: RegistryServer, spec: CorpusSpec = SPEC) -> dict[str, dict[str, str]]:
    """The corpus (images, Docker and OCI, base layers shared by every repo, maybe a large
    layer) plus an OCI index with attestations per repo and a Docker list in the first two;
    repo -> tag -> digest."""
    tags = build_corpus(server, spec).tags
    base = random_layer(spec.shared_layer_size, f"{spec.seed}:base0")  # shared with the corpus
    for i, repo in enumerate(spec.repo_names()):
        tags[repo]["oci-index"] = push_index(
            server, repo, "oci-index", oci=True, attestations=True, shared_base=base
        )
        if i < 2:
            tags[repo]["docker-list"] = push_index(server, repo, "docker-list", oci=False)
    return tags


def tags_at(server: RegistryServer, repo: str) -> list[str]:
    resp = httpx.get(f"{server.url}/v2/{repo}/tags/list")
    return [] if resp.status_code == 404 else sorted(resp.json()["tags"] or [])


def storage(server: RegistryServer) -> Path:
    return server.data_dir / "docker" / "registry" / "v2"


def assert_target_whole(server: RegistryServer) -> int:
    """Every blob stored hashes to its name; every manifest stored in every repository resolves
    (children and blobs present, sizes right). Returns how many manifests were checked."""
    root = storage(server)
    for data in (root / "blobs").rglob("data"):
        assert sha256(data.read_bytes()) == "sha256:" + data.parent.name, f"bad blob {data}"
    checked = 0
    for revisions in (root / "repositories").rglob("_manifests/revisions/sha256"):
        repo = str(revisions.parent.parent.parent.relative_to(root / "repositories"))
        for revision in revisions.iterdir():
            assert_manifest_resolves(server, repo, "sha256:" + revision.name)
            checked += 1
        for link in (revisions.parent.parent.parent / "_layers" / "sha256").glob("*/link"):
            hexdigest = link.read_text().split(":", 1)[1]
            assert (root / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data").exists()
    return checked


def assert_manifest_resolves(server: RegistryServer, repo: str, digest: str) -> None:
    body, _ = fetch_manifest(server, repo, digest)
    assert sha256(body) == digest
    document = json.loads(body)
    if "manifests" in document:
        for child in document["manifests"]:
            assert manifest_digest(server, repo, child["digest"]) == child["digest"], (
                f"{repo}@{digest} points at a missing manifest {child['digest']}"
            )
        return
    for blob in [document["config"], *document["layers"]]:
        head = httpx.head(f"{server.url}/v2/{repo}/blobs/{blob['digest']}")
        assert head.status_code == 200, f"{repo}@{digest} lacks blob {blob['digest']}"
        assert int(head.headers["content-length"]) == blob["size"]


# 10 % faults on both sides ---------------------------------------------------------------------
async def test_sync_through_ten_percent_faults_on_both_sides_is_exact(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    source_tags = build_source(registry)
    src_faults = RandomFaults(0.10, seed="source-1")
    dst_faults = RandomFaults(0.10, seed="target-1")
    with CountingProxy(registry, fault=src_faults) as src, \
            CountingProxy(registry2, fault=dst_faults) as dst:
        report = await run_sync(mirror_config(src.url, dst.url, SPEC.repo_names(), retry=RETRY))

    failed = [r for r in report.results if r.outcome is not Outcome.COPIED]
    assert not failed, failed
    assert len(report.results) == sum(len(t) for t in source_tags.values())
    # the faults really happened, of several kinds, on both sides
    assert src_faults.total >= 5 and dst_faults.total >= 5, (src_faults, dst_faults)
    assert len(src_faults.injected | dst_faults.injected) >= 6
    assert report.counters.blobs_copied > 0 and report.counters.blobs_mounted > 0

    for repo, tags in source_tags.items():
        assert tags_at(registry2, f"mirror/{repo}") == sorted(tags)
        for tag, digest in tags.items():
            assert manifest_digest(registry2, f"mirror/{repo}", tag) == digest, (repo, tag)
    first = SPEC.repo_names()[0]
    for tag in ("1.0.0", "oci-index", "docker-list"):  # an independent client agrees
        assert skopeo_digest(registry2.url, f"mirror/{first}", tag) == source_tags[first][tag]
    assert assert_target_whole(registry2) >= sum(len(t) for t in source_tags.values())


# 100 % faults on the source --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault(disconnect=True, label="disconnect"), "network"),
        (Fault.reset_mid_body(), "network"),
        (Fault.http_status(503), "remote"),
        (Fault.http_status(429, retry_after=0), "rate-limit"),
    ],
    ids=["disconnect", "reset", "503", "429"],
)
async def test_every_source_request_failing_fails_each_tag_and_leaves_target_untouched(
    registry: RegistryServer, registry2: RegistryServer, fault: Fault, kind: str
) -> None:
    tags = build_source(registry, SMALL)
    # tag lists still work, so each tag is tried and must report its own failure
    always = RandomFaults(1.0, seed=0, kinds=[fault], path_regex=r"/(manifests|blobs)/")
    with CountingProxy(registry, fault=always) as src:
        report = await run_sync(mirror_config(src.url, registry2.url, SMALL.repo_names(),
                                            retry=RETRY))

    expected = {(f"rule-{repo}", tag) for repo, repo_tags in tags.items() for tag in repo_tags}
    assert {(r.rule, r.tag) for r in report.results} == expected
    for result in report.results:
        assert result.outcome is Outcome.FAILED
        assert result.error_kind == kind, result
        assert "registry 'src'" in result.reason and "gave up" in result.reason, result.reason
    assert always.total >= len(expected) * ATTEMPTS  # each tag tried to the end
    assert_untouched(registry2)


async def test_source_down_for_everything_fails_each_rule_cleanly(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    build_source(registry, SMALL)
    failing = [f for f in DEFAULT_MIX if f.delay == 0]  # no slow answers: only failures
    always = RandomFaults(1.0, seed=1, kinds=failing)
    with CountingProxy(registry, fault=always) as src:
        report = await run_sync(mirror_config(src.url, registry2.url, SMALL.repo_names(),
                                            retry=RETRY))

    assert sorted(r.rule for r in report.results) == sorted(f"rule-{r}" for r in SMALL.repo_names())
    for result in report.results:
        assert (result.tag, result.outcome) == ("", Outcome.FAILED)
        assert result.error_kind in ("network", "remote", "rate-limit"), result
        assert "registry 'src'" in result.reason and "tags of corpus/app" in result.reason
    assert_untouched(registry2)


def assert_untouched(server: RegistryServer) -> None:
    """No write of any kind reached the registry; it holds no repository, tag or blob."""
    for method in ("PUT", "POST", "PATCH", "DELETE"):
        assert server.count(method, r"^/v2/") == 0, method
    assert httpx.get(f"{server.url}/v2/_catalog").json()["repositories"] == []
    assert not list((storage(server) / "blobs").rglob("data"))
