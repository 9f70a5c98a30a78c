"""Referrers follow their subjects by tag (the real registry: distribution 2.8 has no Referrers
API): cosign's `sha256-<hex>.sig` and the referrers schema's `sha256-<hex>` fallback index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from regsync.daemon.cli.main import main
from regsync.daemon.engine.events import LogEvent, Outcome
from regsync.daemon.engine.run import sync
from support.images import (
    fallback_tag,
    fetch_manifest,
    manifest_digest,
    push_artifact,
    push_cosign,
    push_image,
    push_index_info,
    random_layer,
    skopeo_digest,
)
from support.registry import RegistryFactory, RegistryServer
from support.syncrun import Recorder, load, make_config, outcomes, plan_first_rule, rule, run_sync

pytestmark = pytest.mark.integration

SBOM = "application/spdx+json"
SIGNATURE = "application/vnd.example.signature.v1+json"


def _entries(server: RegistryServer, repo: str, ref: str) -> list[str]:
    return [e["digest"] for e in json.loads(fetch_manifest(server, repo, ref)[0])["manifests"]]


def _source(registry: RegistryServer) -> dict[str, str]:
    """1.0 (an index) signed by cosign; an SBOM of its arm64 image (unusual config type, in the
    fallback index), signed in turn; `other` signed too but never selected."""
    info = push_index_info(registry, "app", "1.0")
    arm64 = info.images["linux/arm64/v8"]
    sbom = push_artifact(registry, "app", arm64, artifact_type=SBOM, payload=b'{"spdx": 1}',
                         config_type="application/vnd.example.sbom.config.v1+json")
    other = push_image(registry, "app", "other", layers=[random_layer(500, "other")], oci=True)
    return {
        "index": info.digest, "arm64": arm64, "amd64": info.images["linux/amd64"], "sbom": sbom,
        "index.sig": push_cosign(registry, "app", info.digest),
        "sbom.sig": push_artifact(registry, "app", sbom, artifact_type=SIGNATURE,
                                  payload=b"sig-of-sbom"),
        "other.sig": push_cosign(registry, "app", other),
    }


async def test_referrers_follow_selected_subjects_whatever_the_filters(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    d = _source(registry)
    data = make_config({"src": registry, "dst": registry2},
                       [rule("app", "m", tags={"include": [r"^1\.0$"]})])
    report = await run_sync(data)
    assert report.ok, report.results
    assert outcomes(report) == {"1.0": Outcome.COPIED}
    sig = fallback_tag(d["index"]) + ".sig"
    assert manifest_digest(registry2, "m", sig) == d["index.sig"]
    assert skopeo_digest(registry2.url, "m", sig) == d["index.sig"]
    assert _entries(registry2, "m", fallback_tag(d["arm64"])) == [d["sbom"]]
    assert manifest_digest(registry2, "m", d["sbom"]) == d["sbom"]
    assert _entries(registry2, "m", fallback_tag(d["sbom"])) == [d["sbom.sig"]]
    assert manifest_digest(registry2, "m", d["sbom.sig"]) == d["sbom.sig"]
    assert manifest_digest(registry2, "m", "other") is None
    assert manifest_digest(registry2, "m", fallback_tag(d["other.sig"])) is None
    assert manifest_digest(registry2, "m", d["other.sig"]) is None
    assert report.referrers_copied == 3  # index.sig, sbom, sbom.sig

    gets = registry.count("GET", r"/v2/app/manifests/")
    heads = registry.count("HEAD", r"/v2/app/manifests/sha256-")
    again = await run_sync(data)
    assert outcomes(again) == {"1.0": Outcome.SKIPPED}
    assert again.referrers_copied == 0
    assert registry.count("GET", r"/v2/app/manifests/") == gets, "re-run GET a source manifest"
    # only the referrer tags the listing holds are asked for: the index's .sig, the fallback
    # indexes of the arm64 image and of its SBOM (before: 4 per manifest the tag reaches)
    assert registry.count("HEAD", r"/v2/app/manifests/sha256-") - heads == 3


async def test_target_fallback_index_is_merged_never_dropping_an_entry(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    d = _source(registry)
    # someone else attached an SBOM of the arm64 image at the target: its fallback index there
    ours = push_artifact(registry2, "app", d["arm64"], artifact_type=SBOM, payload=b"local",
                         subject_from=registry)
    data = make_config({"src": registry, "dst": registry2}, [rule("app", "app")])
    report = await run_sync(data)
    assert report.ok, report.results
    assert _entries(registry2, "app", fallback_tag(d["arm64"])) == [d["sbom"], ours]
    gets = registry.count("GET", r"/v2/app/manifests/")
    again = await run_sync(data)
    assert again.ok and again.referrers_copied == 0
    assert registry.count("GET", r"/v2/app/manifests/") == gets, "re-run GET a source manifest"
    assert _entries(registry2, "app", fallback_tag(d["arm64"])) == [d["sbom"], ours]


async def test_referrers_false_opts_out(registry: RegistryServer, registry2: RegistryServer) -> None:
    d = _source(registry)
    data = make_config({"src": registry, "dst": registry2},
                       [rule("app", "m", tags={"include": [r"^1\.0$"]}, referrers=False)])
    report = await run_sync(data)
    assert report.ok and report.referrers_copied == 0
    assert manifest_digest(registry2, "m", fallback_tag(d["index"]) + ".sig") is None
    assert manifest_digest(registry2, "m", d["sbom"]) is None


async def test_rewritten_index_keeps_its_childrens_referrers_only(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    d = _source(registry)
    config = load(make_config({"src": registry, "dst": registry2},
                              [rule("app", "m", tags={"include": [r"^1\.0$"]},
                                    architectures=["arm64"])]))
    behind = "1 referrer tags of the index not copied: the platform filter rewrites it"
    (planned,) = await plan_first_rule(config)
    assert (planned.action, planned.referrers) == ("copy", 2)  # the SBOM and its signature
    assert planned.reason == f"new tag; referrers: 2 to copy; {behind}"
    recorder = Recorder()
    report = await sync(config.enabled_rules(), config.registries, config.global_, sink=recorder, keep_results=True)
    assert report.ok, report.results
    (planned,) = await plan_first_rule(config)
    assert (planned.action, planned.reason) == ("skip", f"unchanged; {behind}")
    assert manifest_digest(registry2, "m", fallback_tag(d["index"]) + ".sig") is None
    assert _entries(registry2, "m", fallback_tag(d["arm64"])) == [d["sbom"]]
    notes = [e.message for e in recorder.events
             if isinstance(e, LogEvent) and "not copied" in e.message]
    assert notes == [(f"1.0: 1 referrer tags of the index {d['index']} not copied: the index "
                      "was rewritten by the platform filter")]
    assert report.referrers_copied == 2  # sbom, sbom.sig


async def test_a_broken_referrer_fails_its_tag_which_stays_whole(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    image = push_image(registry, "app", "1.0", layers=[random_layer(300, "x")], oci=True)
    push_image(registry, "app", fallback_tag(image), layers=[random_layer(300, "y")], oci=True)
    report = await run_sync(make_config({"src": registry, "dst": registry2}, [rule("app", "m")]))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED and result.digest == image
    assert result.reason.startswith("copied, but not all of its referrers: ")
    assert "is not an index" in result.reason
    assert manifest_digest(registry2, "m", "1.0") == image


def test_check_shows_the_referrers_a_run_would_copy(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    d = _source(registry)
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(make_config(
        {"src": registry, "dst": registry2}, [rule("app", "m", tags={"include": [r"^1\.0$"]})])))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    # the index's .sig, and those of its children: the arm64 image's SBOM and the SBOM's signature
    assert "new tag; referrers: 3 to copy" in out
    assert main(["once", "--config", str(path)]) == 0
    capsys.readouterr()
    push_cosign(registry, "app", d["index"], ".att")  # something new for the unchanged tag
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "copy  1.0" in out and "unchanged; referrers: 1 to copy" in out
    assert main(["once", "--config", str(path)]) == 0
    capsys.readouterr()
    assert main(["check", "--config", str(path)]) == 0
    assert "skip  1.0" in capsys.readouterr().out


async def test_a_mirror_of_a_filtered_mirror_keeps_the_signatures_made_there(
    registry: RegistryServer, registry2: RegistryServer, registry_factory: RegistryFactory
) -> None:
    push_index_info(registry, "app", "1.0")
    first = make_config({"src": registry, "dst": registry2},
                        [rule("app", "m", architectures=["arm64"])])
    assert (await run_sync(first)).ok
    rewritten = manifest_digest(registry2, "m", "1.0")
    assert rewritten is not None
    signature = push_cosign(registry2, "m", rewritten)  # signed where it was rewritten
    registry3 = registry_factory()
    second = await run_sync(make_config({"src": registry2, "dst": registry3},
                                        [rule("m", "n")]))
    assert second.ok, second.results
    assert manifest_digest(registry3, "n", fallback_tag(rewritten) + ".sig") == signature


async def test_only_the_referrer_tags_the_listing_shows_are_asked_for(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    """The run has just listed the repository's tags: a referrer tag it does not show is not
    asked for (a no-op re-run of unsigned images was four source HEADs per tag more), and one it
    shows still follows its subject."""
    signed = push_image(registry, "app", "1.0", layers=[random_layer(500, "a")], oci=True)
    push_image(registry, "app", "2.0", layers=[random_layer(500, "b")], oci=True)
    push_cosign(registry, "app", signed)
    data = make_config({"src": registry, "dst": registry2}, [rule("app", "m")])
    before = len(registry.access_log())
    first = await run_sync(data)
    assert first.ok and first.referrers_copied == 1, first.results
    asked = {e.path.rsplit("/", 1)[-1] for e in registry.access_log()[before:]
             if "/manifests/sha256-" in e.path}
    assert asked == {f"sha256-{signed.removeprefix('sha256:')}.sig"}
    before = len(registry.access_log())
    again = await run_sync(data)
    assert outcomes(again) == {"1.0": Outcome.SKIPPED, "2.0": Outcome.SKIPPED}
    heads = [e for e in registry.access_log()[before:] if e.method == "HEAD"]
    assert len(heads) == 3  # the two tags and the one signature
