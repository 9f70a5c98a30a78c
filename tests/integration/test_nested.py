"""Nested indexes and entries that describe other entries, against the real registry.

A tag whose index holds another index once failed or succeeded depending on which tag the run
copied first; under `architectures:` a `builder`-type entry describing a kept image was dropped.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from regsync.daemon.engine.events import Outcome
from support.fakeregistry import FakeRegistry
from support.images import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    fetch_manifest,
    manifest_digest,
    push_index_info,
    push_nested_index,
    skopeo_digest,
)
from support.registry import RegistryServer
from support.syncrun import make_config, outcomes, rule, run_sync

pytestmark = pytest.mark.integration

INNER = (("linux", "amd64", ""), ("linux", "arm64", "v8"))


def _only(tag: str, dst: str, **extra: Any) -> dict[str, Any]:
    return rule("nest", dst, tags={"include": [f"^{tag}$"]}, **extra)


def _entries(server: RegistryServer, repo: str, ref: str) -> list[dict[str, Any]]:
    index = json.loads(fetch_manifest(server, repo, ref)[0])
    entries: list[dict[str, Any]] = index["manifests"]
    return entries


def _all_present(server: RegistryServer, repo: str, ref: str) -> None:
    """Every manifest the index reaches, at any depth, is in `repo` (blobs are checked by the
    registry itself: it refuses a manifest whose blobs are missing)."""
    for entry in _entries(server, repo, ref):
        assert manifest_digest(server, repo, entry["digest"]) == entry["digest"]
        if entry["mediaType"].endswith("index.v1+json"):
            _all_present(server, repo, entry["digest"])


@pytest.mark.parametrize("architectures", [[], ["arm64"]], ids=["whole", "arm64"])
async def test_shared_nested_index_gives_the_same_result_in_either_tag_order(
    registry: RegistryServer, registry2: RegistryServer, architectures: list[str]
) -> None:
    nested = push_nested_index(registry, "nest", "outer", "inner", inner_platforms=INNER)
    regs = {"src": registry, "dst": registry2}
    extra: dict[str, Any] = {"architectures": architectures} if architectures else {}
    results: dict[str, dict[str, str | None]] = {}
    for order, tags in (("outer-first", ("outer", "inner")), ("inner-first", ("inner", "outer")),
                        ("together", ())):
        dst = f"mirror/{order}"
        runs = [[_only(t, dst, **extra)] for t in tags] or [[rule("nest", dst, **extra)]]
        for rules in runs:
            report = await run_sync(make_config(regs, rules))
            assert report.ok, (order, report.results)
        results[order] = {t: manifest_digest(registry2, dst, t) for t in ("outer", "inner")}
        _all_present(registry2, dst, "outer")
    assert results["outer-first"] == results["inner-first"] == results["together"]

    got = results["together"]
    if not architectures:  # byte-for-byte at every depth
        assert got == {"outer": nested.digest, "inner": nested.inner.digest}
        assert skopeo_digest(registry2.url, "mirror/together", "outer") == nested.digest
        return
    # arm64 only: the outer image (arm/v7) goes, the nested index keeps arm64 and its attestation
    entries = _entries(registry2, "mirror/together", "outer")
    assert [e["mediaType"] for e in entries] == ["application/vnd.oci.image.index.v1+json"]
    assert entries[0]["digest"] == got["inner"] != nested.inner.digest
    inner = _entries(registry2, "mirror/together", "inner")
    arm64 = nested.inner.images["linux/arm64/v8"]
    assert [e["digest"] for e in inner] == [arm64, nested.inner.attestations[arm64]]
    gets = registry.count("GET", r"/v2/nest/manifests/")
    again = await run_sync(make_config(regs, [rule("nest", "mirror/together", **extra)]))
    assert outcomes(again) == {"outer": Outcome.SKIPPED, "inner": Outcome.SKIPPED}
    assert registry.count("GET", r"/v2/nest/manifests/") == gets, "re-run GET a source manifest"


async def test_nested_index_left_empty_is_dropped(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    nested = push_nested_index(registry, "nest", "outer", None, inner_platforms=INNER)
    data = make_config({"src": registry, "dst": registry2},
                       [rule("nest", "m", platforms=["linux/arm/v7"])])
    report = await run_sync(data)
    assert report.ok, report.results
    (result,) = report.results
    assert "index rewritten without" in result.reason and "linux/amd64" in result.reason
    entries = _entries(registry2, "m", "outer")
    assert [e["digest"] for e in entries] == [nested.images["linux/arm/v7"]]
    assert manifest_digest(registry2, "m", nested.inner.digest) is None


async def test_builder_entry_follows_the_image_it_describes(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    info = push_index_info(registry, "b", "1.0", reference_type="builder")
    data = make_config({"src": registry, "dst": registry2},
                       [rule("b", "b", architectures=["arm64"])])
    report = await run_sync(data)
    assert report.ok, report.results
    arm64 = info.images["linux/arm64/v8"]
    entries = _entries(registry2, "b", "1.0")
    assert [e["digest"] for e in entries] == [arm64, info.attestations[arm64]]
    assert entries[1]["annotations"]["vnd.docker.reference.type"] == "builder"
    _all_present(registry2, "b", "1.0")


async def test_nesting_deeper_than_the_cap_fails_the_tag_only(registry2: RegistryServer) -> None:
    with FakeRegistry() as fake:
        child = fake.add_image("deep", "leaf", b"layer")
        size = len(fake.manifests[("deep", child)].body)
        for level in range(6):  # the tag's index and 5 nested below it: one too many
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": OCI_INDEX if level else DOCKER_MANIFEST, "digest": child,
                 "size": size}]}).encode()
            child, size = fake.add_manifest("deep", f"l{level}", body, OCI_INDEX), len(body)
        report = await run_sync(make_config({"src": fake.url, "dst": registry2},
                                            [rule("deep", "deep", tags={"include": ["^l[0-5]$"]})]))
    got = {r.tag: (r.outcome, r.reason) for r in report.results}
    assert all(got[f"l{n}"][0] is Outcome.COPIED for n in range(5)), got
    assert got["l5"][0] is Outcome.FAILED
    assert "nests indexes deeper than 4 levels" in got["l5"][1]
