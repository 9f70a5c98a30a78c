"""The copy engine end to end against real registries, cross-checked with skopeo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import yaml
from regsync.daemon.cli.main import main
from regsync.daemon.engine.events import Outcome, discard
from regsync.daemon.engine.platform_memory import PlatformMemory, default_path
from regsync.daemon.engine.run import sync
from support.images import (
    fetch_manifest,
    manifest_digest,
    push_image,
    push_index,
    random_layer,
    sha256,
    skopeo_digest,
)
from support.proxy import CountingProxy, Fault, fail_times
from support.registry import RegistryServer, free_port
from support.syncrun import load, make_config, outcomes, rule, run_sync

pytestmark = pytest.mark.integration


def blob_exists(server: RegistryServer, repo: str, digest: str) -> bool:
    return httpx.head(f"{server.url}/v2/{repo}/blobs/{digest}").status_code == 200


def tags_at(server: RegistryServer, repo: str) -> list[str]:
    resp = httpx.get(f"{server.url}/v2/{repo}/tags/list")
    if resp.status_code == 404:
        return []
    return sorted(resp.json()["tags"] or [])


async def test_full_copy_is_exact_and_rerun_costs_no_source_get(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    base = random_layer(300_000, seed=1)
    push_image(registry, "app", "1.0", layers=[base, random_layer(50_000, seed=2)])
    push_index(registry, "app", "2.0", oci=True, attestations=True, shared_base=base)
    push_index(registry, "app", "2.1", oci=False, attestations=False)
    data = make_config({"src": registry, "dst": registry2}, [rule("app", "mirror/app")])

    report = await run_sync(data)

    assert report.ok, report.results
    assert outcomes(report) == {t: Outcome.COPIED for t in ("1.0", "2.0", "2.1")}
    for tag in ("1.0", "2.0", "2.1"):
        want = manifest_digest(registry, "app", tag)
        assert manifest_digest(registry2, "mirror/app", tag) == want
        assert skopeo_digest(registry2.url, "mirror/app", tag) == want
    # the shared base layer moved once although several tags and index children use it
    assert registry.count("GET", "/v2/app/blobs/" + sha256(base) + "$") == 1

    before = registry.count("GET", r"/v2/app/manifests/")
    again = await run_sync(data)
    assert again.ok
    assert outcomes(again) == {t: Outcome.SKIPPED for t in ("1.0", "2.0", "2.1")}
    assert registry.count("GET", r"/v2/app/manifests/") == before, "re-run GET a source manifest"
    assert again.counters.blobs_copied == 0


async def test_filters_select_tags(registry: RegistryServer, registry2: RegistryServer) -> None:
    layer = random_layer(10_000, seed=3)
    tags = ["1.19.0", "1.20.0", "1.21.3", "1.22.1", "1.22.1-alpine", "1.23.0", "2.0.0", "latest"]
    for tag in tags:
        push_image(registry, "nginx", tag, layers=[layer])
    data = make_config(
        {"src": registry, "dst": registry2},
        [
            rule("nginx", "f/regex", tags={"include": [r"^1\.2[0-9]\."], "exclude": [".*-alpine"],
                                           "latest": 2}),
            rule("nginx", "f/semver", tags={"semver": ">=1.21 <2"}),
        ],
    )
    report = await run_sync(data)
    assert report.ok
    assert tags_at(registry2, "f/regex") == ["1.22.1", "1.23.0"]
    assert tags_at(registry2, "f/semver") == ["1.21.3", "1.22.1", "1.23.0"]


async def test_platform_selection_rewrites_index_and_rerun_skips(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_index(
        registry, "multi", "1.0",
        platforms=[("linux", "amd64", ""), ("linux", "arm64", "v8"), ("linux", "arm", "v7")],
        oci=True, attestations=True,
    )
    data = make_config(
        {"src": registry, "dst": registry2},
        [rule("multi", "multi", architectures=["amd64"], platforms=["linux/arm/v7"])],
    )
    report = await run_sync(data)
    assert report.ok, report.results
    (result,) = report.results
    assert "index rewritten" in result.reason

    index = json.loads(fetch_manifest(registry2, "multi", "1.0")[0])
    images = [m for m in index["manifests"] if m["platform"]["architecture"] != "unknown"]
    attestations = [m for m in index["manifests"] if m["platform"]["architecture"] == "unknown"]
    assert sorted(m["platform"]["architecture"] for m in images) == ["amd64", "arm"]
    kept = {m["digest"] for m in images}
    assert {a["annotations"]["vnd.docker.reference.digest"] for a in attestations} == kept
    for child in index["manifests"]:  # every child is really there
        assert manifest_digest(registry2, "multi", child["digest"]) == child["digest"]

    gets = registry.count("GET", r"/v2/multi/manifests/")
    again = await run_sync(data)
    assert outcomes(again) == {"1.0": Outcome.SKIPPED}
    assert registry.count("GET", r"/v2/multi/manifests/") == gets


async def test_shared_blobs_are_mounted_across_target_repos(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    base = random_layer(200_000, seed=4)
    push_image(registry, "a", "1", layers=[base, random_layer(1000, seed=5)])
    push_image(registry, "b", "1", layers=[base, random_layer(1000, seed=6)])
    data = make_config(
        {"src": registry, "dst": registry2},
        [rule("a", "m/a"), rule("b", "m/b")],
        concurrency=1,
    )
    report = await run_sync(data)
    assert report.ok
    assert report.counters.blobs_mounted >= 1
    mounted = [e for e in registry2.access_log()
               if e.method == "POST" and "mount=" + sha256(base) in unquote(e.uri)
               and e.status == 201]
    assert len(mounted) == 1  # the target registry did the cross-repository mount
    # one transfer of the base layer: the second repository mounted it
    assert registry.count("GET", r"/v2/[ab]/blobs/" + sha256(base) + "$") == 1


async def test_registry_that_lies_about_a_digest_is_refused(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    layer = random_layer(100_000, seed=7)
    push_image(registry, "liar", "1.0", layers=[layer])
    corrupt = fail_times(Fault.corrupt(), 1000, "GET", r"/blobs/sha256:")
    with CountingProxy(registry.url, fault=corrupt) as proxy:
        data = make_config({"src": proxy.url, "dst": registry2}, [rule("liar", "liar")])
        report = await run_sync(data)
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.error_kind == "digest-mismatch"
    assert "sha256:" in result.reason
    assert tags_at(registry2, "liar") == []  # nothing tagged
    assert not blob_exists(registry2, "liar", sha256(layer))


async def test_large_layer_streams(registry: RegistryServer, registry2: RegistryServer) -> None:
    big = random_layer(40 * 1024 * 1024, seed=8)
    push_image(registry, "big", "1", layers=[big])
    report = await run_sync(make_config({"src": registry, "dst": registry2}, [rule("big", "big")]))
    assert report.ok
    assert manifest_digest(registry2, "big", "1") == manifest_digest(registry, "big", "1")
    assert report.counters.bytes_copied >= len(big)


async def test_token_auth_source_to_basic_auth_target(
    token_registry: RegistryServer, basic_registry: RegistryServer
) -> None:
    push_image(token_registry, "private/app", "1", layers=[random_layer(5000, seed=9)])
    data = make_config(
        {"src": token_registry, "dst": basic_registry}, [rule("private/app", "copy/app")]
    )
    report = await run_sync(data)
    assert report.ok, report.results
    assert manifest_digest(basic_registry, "copy/app", "1") == manifest_digest(
        token_registry, "private/app", "1"
    )


async def test_wrong_password_names_the_registry(
    basic_registry: RegistryServer, registry2: RegistryServer
) -> None:
    data = make_config({"src": registry2, "dst": basic_registry}, [rule("x", "x")])
    data["registries"]["src"] = {"url": basic_registry.url, "username": basic_registry.username,
                                 "password": "wrong-" + (basic_registry.password or "")}
    report = await run_sync(data)
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.error_kind == "auth"
    assert "'src'" in result.reason
    assert (basic_registry.password or "???") not in result.reason


async def test_unreachable_registry_is_a_network_error(registry2: RegistryServer) -> None:
    data = make_config(
        {"src": f"http://127.0.0.1:{free_port()}", "dst": registry2}, [rule("x", "x")]
    )
    report = await run_sync(data)
    (result,) = report.results
    assert result.error_kind == "network"
    assert "'src'" in result.reason


def test_once_and_check_command_line(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    push_image(registry, "cli", "1.0", layers=[random_layer(1000, seed=10)])
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(make_config({"src": registry, "dst": registry2},
                                               [rule("cli", "cli", name="cli-rule")])))

    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "copy" in out and "1.0" in out and "new tag" in out
    assert tags_at(registry2, "cli") == []  # check writes nothing

    assert main(["once", "--config", str(path)]) == 0
    err = capsys.readouterr().err
    assert "1 copied, 0 skipped, 0 failed" in err
    assert main(["check", "--config", str(path)]) == 0
    assert "unchanged" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["sync_rules"][0]["source"].update(registry="nope"), "nope"),
        (lambda d: d["sync_rules"][0].update(tags={"include": ["("]}), "("),
        (lambda d: d["sync_rules"][0].update(cron_expression="61 * * * *"), "cron"),
    ],
)
def test_bad_config_exits_2_with_a_clear_message(
    mutate: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_config({"src": "http://127.0.0.1:1", "dst": "http://127.0.0.1:2"},
                       [rule("a", "b")])
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["once", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err


async def test_platform_filter_on_single_platform_images(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_image(registry, "single", "amd", layers=[random_layer(1000, seed=11)], arch="amd64")
    push_image(registry, "single", "arm", layers=[random_layer(1000, seed=12)], arch="arm64")
    data = make_config({"src": registry, "dst": registry2},
                       [rule("single", "single", architectures=["amd64"])])
    report = await run_sync(data)
    assert report.ok
    assert outcomes(report) == {"amd": Outcome.COPIED, "arm": Outcome.SKIPPED}
    assert tags_at(registry2, "single") == ["amd"]
    assert "platform not selected" in next(r.reason for r in report.results if r.tag == "arm")


async def test_an_excluded_single_platform_image_costs_only_heads_on_later_runs(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_image(registry, "single", "amd", layers=[random_layer(1000, seed=11)], arch="amd64")
    push_image(registry, "single", "arm", layers=[random_layer(1000, seed=12)], arch="arm64")
    config = load(make_config({"src": registry, "dst": registry2},
                              [rule("single", "single", platforms=["linux/amd64"])]))
    memory = PlatformMemory()
    first = await sync(config.enabled_rules(), config.registries, config.global_,
                       sink=discard, keep_results=True, platforms=memory)
    assert outcomes(first) == {"amd": Outcome.COPIED, "arm": Outcome.SKIPPED}
    gets = registry.count("GET", r"/manifests/"), registry.count("GET", r"/blobs/")

    again = await sync(config.enabled_rules(), config.registries, config.global_,
                       sink=discard, keep_results=True, platforms=memory)

    assert outcomes(again) == {"amd": Outcome.SKIPPED, "arm": Outcome.SKIPPED}
    assert {r.tag: r.reason for r in again.results} == {
        "amd": "unchanged", "arm": "platform not selected by the rule"}
    assert (registry.count("GET", r"/manifests/"), registry.count("GET", r"/blobs/")) == gets
    assert tags_at(registry2, "single") == ["amd"]


def test_once_remembers_excluded_platforms_between_runs(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    push_image(registry, "single", "arm", layers=[random_layer(1000, seed=12)], arch="arm64")
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(make_config(
        {"src": registry, "dst": registry2},
        [rule("single", "single", architectures=["amd64"])])))
    assert main(["once", "--config", str(path)]) == 0
    assert "0 copied, 1 skipped" in capsys.readouterr().err
    gets = registry.count("GET", r"/manifests/")
    assert gets == 1

    assert main(["once", "--config", str(path)]) == 0
    assert main(["check", "--config", str(path)]) == 0

    assert "platform not selected" in capsys.readouterr().out
    assert registry.count("GET", r"/manifests/") == gets  # the file kept what was learnt
    assert default_path().is_relative_to(tmp_path) and default_path().exists()


def test_ctrl_c_during_once_exits_130_without_a_traceback(
    registry2: RegistryServer, tmp_path: Path
) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as silent:  # accepts, never answers: the run waits on it
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        path = tmp_path / "sync.yaml"
        path.write_text(yaml.safe_dump(make_config(
            {"src": f"http://127.0.0.1:{silent.getsockname()[1]}", "dst": registry2},
            [rule("app", "app")])))
        regsyncd = str(Path(sys.executable).parent / "regsyncd")
        process = subprocess.Popen([regsyncd, "once", "--config", str(path)],
                                   stderr=subprocess.PIPE, text=True)
        try:
            silent.settimeout(20)
            connection, _ = silent.accept()  # the request has started, and hangs
            with connection:
                time.sleep(0.3)
                process.send_signal(signal.SIGINT)
                _, err = process.communicate(timeout=20)
        finally:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted; tags finished so far are in place" in err
    assert "Traceback" not in err
