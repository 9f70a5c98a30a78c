"""Referrers to a target with the OCI 1.1 Referrers API (the test bed's fake, writable: it lists
a manifest pushed with a `subject` and answers `OCI-Subject`), the API's `Link` pages, and a
rule's `artifact_types`; the sources are the real registry (tags) and the fake (the API)."""

from __future__ import annotations

import json

import httpx
import pytest
from regsync.daemon.engine.events import Outcome
from support.fakeregistry import FakeRegistry, Served
from support.images import (
    fallback_tag,
    fetch_manifest,
    manifest_digest,
    push_artifact,
    push_cosign,
    push_image,
    random_layer,
    skopeo_digest,
)
from support.registry import RegistryServer
from support.syncrun import make_config, outcomes, rule, run_sync

pytestmark = pytest.mark.integration

SBOM = "application/spdx+json"
SIGNATURE = "application/vnd.example.signature.v1+json"
COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"


def _listed(fake: FakeRegistry, repo: str, subject: str) -> list[str]:
    answer = httpx.get(f"{fake.url}/v2/{repo}/referrers/{subject}")
    return [str(e["digest"]) for e in answer.json()["manifests"]]


def test_the_writable_fake_answers_oci_subject_and_lists_the_referrer() -> None:
    with FakeRegistry(writable=True) as fake:
        image = fake.add_image("app", "1.0", b"layer")
        sbom = fake.add_referrer("app", image, b"{}", SBOM)
        body = fake.manifests[("app", sbom)].body
        fake.referrers.clear()
        reply = httpx.put(f"{fake.url}/v2/m/manifests/{sbom}", content=body,
                          headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert reply.status_code == 201 and reply.headers["OCI-Subject"] == image
        assert _listed(fake, "m", image) == [sbom]


async def test_tag_referrers_reach_a_target_with_the_api(
    registry: RegistryServer,
) -> None:
    image = push_image(registry, "app", "1.0", layers=[random_layer(300, "t")], oci=True)
    sbom = push_artifact(registry, "app", image, artifact_type=SBOM, payload=b'{"spdx": 1}')
    signature = push_cosign(registry, "app", image)
    with FakeRegistry(writable=True) as fake:
        report = await run_sync(make_config({"src": registry, "dst": fake.url},
                                            [rule("app", "m")]))
        assert report.ok, report.results
        assert report.referrers_copied == 2 and report.counters.referrers_copied == 2
        assert _listed(fake, "m", image) == [sbom]  # the target's own lookup finds it
        assert fake.manifests[("m", fallback_tag(image) + ".sig")] == fake.manifests[
            ("m", signature)]


async def test_api_referrers_reach_a_target_with_the_api_without_a_fallback_tag() -> None:
    with FakeRegistry() as source, FakeRegistry(writable=True) as target:
        image = source.add_image("app", "1.0", b"layer")
        sbom = source.add_referrer("app", image, b'{"spdx": 1}', SBOM)
        sig = source.add_referrer("app", sbom, b"signature", SIGNATURE,
                                  subject_type="application/vnd.oci.image.manifest.v1+json")
        data = make_config({"src": source.url, "dst": target.url}, [rule("app", "m")])
        report = await run_sync(data)
        assert report.ok, report.results
        assert report.referrers_copied == 2
        assert _listed(target, "m", image) == [sbom]
        assert _listed(target, "m", sbom) == [sig]
        assert fallback_tag(image) not in target.tags["m"]  # the API holds them: no index tag
        again = await run_sync(data)
        assert again.ok and again.referrers_copied == 0


async def test_referrers_api_pages_are_followed(registry2: RegistryServer) -> None:
    with FakeRegistry() as fake:
        fake.referrers_page = 2
        image = fake.add_image("app", "1.0", b"layer")
        sboms = [fake.add_referrer("app", image, b"sbom %d" % i, SBOM) for i in range(5)]
        report = await run_sync(make_config({"src": fake.url, "dst": registry2},
                                            [rule("app", "m")]))
        assert report.ok, report.results
        assert report.referrers_copied == 5
        assert fake.count("GET", "/referrers/" + image) == 3
        index = json.loads(fetch_manifest(registry2, "m", fallback_tag(image))[0])
        assert [e["digest"] for e in index["manifests"]] == sboms
    # skopeo, another client, reads the same index under the fallback tag
    assert skopeo_digest(registry2.url, "m", fallback_tag(image)) == manifest_digest(
        registry2, "m", fallback_tag(image))


@pytest.mark.parametrize(("link", "why"), [
    ("<http://127.0.0.2:1/v2/app/referrers/{d}?page=1>; rel=\"next\"", "another origin"),
    ("</v2/other/referrers/{d}?page=1>; rel=\"next\"", "another path"),
    ("</v2/app/referrers/{d}?page=0>; rel=\"next\"", "pages loop"),
])
async def test_hostile_referrers_pages_are_refused(
    registry2: RegistryServer, link: str, why: str
) -> None:
    with FakeRegistry() as fake:
        image = fake.add_image("app", "1.0", b"layer")
        fake.add_referrer("app", image, b"sbom", SBOM)
        entries = fake.referrers[("app", image)]
        body = json.dumps({"schemaVersion": 2, "manifests": entries}).encode()

        def hook(method: str, path: str, query: str) -> tuple[int, Served, dict[str, str]] | None:
            if "/referrers/" not in path:
                return None
            return 200, Served(body, "application/vnd.oci.image.index.v1+json"), {
                "Link": link.format(d=image)}

        fake.hook = hook
        report = await run_sync(make_config({"src": fake.url, "dst": registry2},
                                            [rule("app", "m")]))
        (result,) = report.results
        assert result.outcome is Outcome.FAILED and result.error_kind == "remote", result
        assert why in result.reason
        assert fake.count("GET", "/referrers/") <= 33


async def test_artifact_types_choose_the_referrers(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    image = push_image(registry, "app", "1.0", layers=[random_layer(300, "a")], oci=True)
    sbom = push_artifact(registry, "app", image, artifact_type=SBOM, payload=b'{"spdx": 1}')
    other = push_artifact(registry, "app", image, artifact_type=SIGNATURE, payload=b"other")
    sbom_sig = push_artifact(registry, "app", sbom, artifact_type=SIGNATURE, payload=b"s")
    push_cosign(registry, "app", image)
    data = make_config({"src": registry, "dst": registry2},
                       [rule("app", "m", referrers={"artifact_types": [SBOM]})])
    report = await run_sync(data)
    assert report.ok, report.results
    assert report.referrers_copied == 1
    assert manifest_digest(registry2, "m", sbom) == sbom
    for absent in (other, sbom_sig):
        assert manifest_digest(registry2, "m", absent) is None
    assert manifest_digest(registry2, "m", fallback_tag(image) + ".sig") is None
    index = json.loads(fetch_manifest(registry2, "m", fallback_tag(image))[0])
    assert [e["digest"] for e in index["manifests"]] == [sbom]
    gets = registry.count("GET", r"/v2/app/manifests/")
    again = await run_sync(data)
    assert outcomes(again) == {"1.0": Outcome.SKIPPED} and again.referrers_copied == 0
    assert registry.count("GET", r"/v2/app/manifests/") == gets, "re-run GET a source manifest"

    cosign = await run_sync(make_config({"src": registry, "dst": registry2},
                                        [rule("app", "m", referrers={"artifact_types": [
                                            COSIGN_SIG, SIGNATURE]})]))
    assert cosign.ok and cosign.referrers_copied == 2  # the .sig tag, `other`: not sbom's own
    assert manifest_digest(registry2, "m", fallback_tag(image) + ".sig") is not None
    assert manifest_digest(registry2, "m", other) == other
    assert manifest_digest(registry2, "m", sbom_sig) is None
