"""Referrers through the OCI 1.1 Referrers API on the source (the test bed's fake: distribution
2.8 has no API), copied to a real registry without it, which gets them in its fallback index."""

from __future__ import annotations

import json

import pytest
from regsync.daemon.engine.events import Outcome
from support.fakeregistry import FakeRegistry, Served
from support.images import fallback_tag, fetch_manifest, manifest_digest, skopeo_digest
from support.registry import RegistryServer
from support.syncrun import load, make_config, outcomes, plan_first_rule, rule, run_sync

pytestmark = pytest.mark.integration


async def test_api_referrers_reach_a_target_without_the_api(registry2: RegistryServer) -> None:
    with FakeRegistry() as fake:
        image = fake.add_image("app", "1.0", b"layer")
        fake.add_image("app", "2.0", b"other layer")
        sbom = fake.add_referrer("app", image, b'{"spdx": 1}', "application/spdx+json")
        sig = fake.add_referrer("app", sbom, b"signature", "application/vnd.example.sig",
                                subject_type="application/vnd.oci.image.manifest.v1+json")
        data = make_config({"src": fake.url, "dst": registry2},
                           [rule("app", "m", tags={"include": [r"^1\.0$"]})])
        report = await run_sync(data)
        assert report.ok, report.results
        assert report.referrers_copied == 2
        for digest in (sbom, sig):
            assert manifest_digest(registry2, "m", digest) == digest
        index = json.loads(fetch_manifest(registry2, "m", fallback_tag(image))[0])
        assert [e["digest"] for e in index["manifests"]] == [sbom]
        assert index["manifests"][0]["artifactType"] == "application/spdx+json"
        assert [e["digest"] for e in json.loads(
            fetch_manifest(registry2, "m", fallback_tag(sbom))[0])["manifests"]] == [sig]
        # skopeo reads the SBOM (pushed to the source without any tag) and the index listing it
        assert skopeo_digest(registry2.url, "m", sbom) == sbom
        assert skopeo_digest(registry2.url, "m", fallback_tag(image)) == manifest_digest(
            registry2, "m", fallback_tag(image))

        gets = fake.count("GET", r"/manifests/")
        api = fake.count("GET", r"/referrers/")
        again = await run_sync(data)
        assert outcomes(again) == {"1.0": Outcome.SKIPPED}
        assert again.referrers_copied == 0
        assert fake.count("GET", r"/manifests/") == gets, "re-run GET a source manifest"
        assert fake.count("GET", r"/referrers/") - api == 3  # one per subject: image, sbom, sig
        assert api == 3
        assert fake.count("GET", "/referrers/" + fake.add_image("app", "2.0", b"other layer")) == 0


async def test_the_plan_counts_referrers_only_the_api_lists(registry2: RegistryServer) -> None:
    with FakeRegistry() as fake:
        image = fake.add_image("app", "1.0", b"layer")
        sbom = fake.add_referrer("app", image, b'{"spdx": 1}', "application/spdx+json")
        fake.add_referrer("app", sbom, b"signature", "application/vnd.example.sig",
                          subject_type="application/vnd.oci.image.manifest.v1+json")
        config = load(make_config({"src": fake.url, "dst": registry2}, [rule("app", "m")]))
        plans = await plan_first_rule(config)
        assert [(p.tag, p.action, p.referrers) for p in plans] == [("1.0", "copy", 2)]
        assert plans[0].reason == "new tag; referrers: 2 to copy"
        assert (await run_sync(make_config({"src": fake.url, "dst": registry2},
                                           [rule("app", "m")]))).referrers_copied == 2
        plans = await plan_first_rule(config)
        assert [(p.action, p.reason, p.referrers) for p in plans] == [("skip", "unchanged", 0)]


async def test_a_hostile_referrers_answer_is_refused(registry2: RegistryServer) -> None:
    with FakeRegistry() as fake:
        fake.add_image("app", "1.0", b"layer")
        fake.hook = lambda method, path, query: (
            (200, Served(b'{"manifests": [{"digest": "../x"}]}', "application/json"), {})
            if "/referrers/" in path else None)
        report = await run_sync(make_config({"src": fake.url, "dst": registry2},
                                            [rule("app", "m")]))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED and result.error_kind == "remote", result
    assert "manifests[0]" in result.reason


async def test_a_stale_fallback_index_loses_only_what_the_source_lost(
    registry2: RegistryServer,
) -> None:
    with FakeRegistry() as fake:
        fake.referrers_api = False  # as distribution 2.8: the fallback tag is all there is
        image = fake.add_image("app", "1.0", b"layer")
        sbom = fake.add_referrer("app", image, b'{"spdx": 1}', "application/spdx+json")
        entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10}
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": [{**entry, "digest": "sha256:" + "0" * 64},
                                         {**entry, "digest": sbom, "size": len(
                                             fake.manifests[("app", sbom)].body)}]}).encode()
        fake.add_manifest("app", fallback_tag(image), body, "application/vnd.oci.image.index.v1+json")
        data = make_config({"src": fake.url, "dst": registry2}, [rule("app", "m")])
        report = await run_sync(data)
        assert report.ok, report.results
        index = json.loads(fetch_manifest(registry2, "m", fallback_tag(image))[0])
        assert [e["digest"] for e in index["manifests"]] == [sbom]
        gets = fake.count("GET", r"/manifests/")
        again = await run_sync(data)
        assert again.ok and again.referrers_copied == 0
        assert fake.count("GET", r"/manifests/") == gets, "re-run GET a source manifest"
