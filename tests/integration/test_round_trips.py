"""Requests on the target per blob, counted in the real registry's access log (or in a proxy).

A blob already there costs one HEAD; a new one the HEAD, a POST (a mount, or the upload's start)
and one PUT streaming its bytes: no PATCH, and a mount answered 202 uploads into that session.
Registries refusing one-piece bodies get the chunked upload in parts of their
OCI-Chunk-Min-Length. A bad byte or a kill -9 in the middle of a streamed PUT commits nothing
and writes no tag.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml
from regsync.daemon.engine.events import Outcome
from regsync.daemon.engine.report import RunReport
from regsync.daemon.engine.run import sync
from regsync.daemon.engine.upload_memory import UploadMemory
from support.images import Pusher, fetch_manifest, manifest_digest, push_image, random_layer
from support.proxy import CountingProxy, Fault, ProxyRequest
from support.registry import AccessEntry, RegistryServer
from support.syncrun import Recorder, load, make_config, rule

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
REGSYNCD = str(Path(sys.executable).parent / "regsyncd")


def blob_digests(server: RegistryServer, repo: str, tag: str) -> list[str]:
    document = json.loads(fetch_manifest(server, repo, tag)[0])
    return [document["config"]["digest"], *(layer["digest"] for layer in document["layers"])]


def query_digest(entry: AccessEntry) -> str | None:
    """The blob an upload request is about (`mount=` of a POST, `digest=` of a PUT)."""
    query = parse_qs(entry.uri.partition("?")[2])
    values = query.get("mount") or query.get("digest")
    return values[0] if values else None


async def run(config: dict[str, Any], memory: UploadMemory, tags: list[str]) -> RunReport:
    loaded = load(config)
    rules = loaded.enabled_rules()
    return await sync(rules, loaded.registries, loaded.global_, sink=Recorder(), keep_results=True, uploads=memory,
                      only_tags={r.name: tags for r in rules})


async def test_new_blob_costs_head_post_and_one_put_and_a_present_one_one_head(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src, dst = registry, registry2
    shared, first, second = (random_layer(3 * MIB, n) for n in ("shared", "first", "second"))
    push_image(src, "app", "1", layers=[shared, first])
    push_image(src, "app", "2", layers=[shared, second], arch="arm64")
    config = make_config({"src": src, "dst": dst}, [rule("app", "mirror/app")])
    assert (await run(config, UploadMemory(), ["1"])).results[0].outcome is Outcome.COPIED
    before = len(dst.access_log())

    report = await run(config, UploadMemory(), ["2"])  # a tag sharing one layer with the first

    assert [r.outcome for r in report.results] == [Outcome.COPIED]
    log = dst.access_log()[before:]
    blobs = [e for e in log if "/blobs/" in e.path]
    new = set(blob_digests(src, "app", "2")) - set(blob_digests(src, "app", "1"))
    present = set(blob_digests(src, "app", "2")) & set(blob_digests(src, "app", "1"))
    heads = Counter((e.status, e.path.rsplit("/", 1)[-1]) for e in blobs if e.method == "HEAD")
    for digest in present:  # already in the target repository: one HEAD (a read), no more
        assert heads[(404, digest)] == 0 and heads[(200, digest)] == 1
    for digest in new:  # config and a 3 MiB layer: the HEAD, one POST, one streamed PUT
        assert heads[(404, digest)] == 1
    posts = [e for e in blobs if e.method == "POST"]
    puts = Counter(query_digest(e) for e in blobs if e.method == "PUT" and e.status == 201)
    assert len(posts) == len(new) and all(e.status == 202 for e in posts)
    assert puts == Counter(new)  # each new blob in one PUT, the 3 MiB layer included
    assert len(blobs) == 3 * len(new) + len(present)  # no PATCH, no DELETE, no mount
    manifests = [(e.method, e.status) for e in log if "/manifests/" in e.path]
    assert sorted(manifests) == [("HEAD", 404), ("PUT", 201)]  # the tag: a HEAD, then the PUT


def mount_ignored(request: ProxyRequest) -> Fault | None:
    """A registry that answers 202 (an upload session) to every cross-repository mount."""
    if request.method == "POST" and "mount=" in request.query:
        return Fault(query="")
    return None


async def test_a_mount_answered_with_202_uploads_into_that_session_not_a_new_one(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src, dst = registry, registry2
    push_image(src, "app", "1", layers=[random_layer(2 * MIB, "s"), random_layer(300, "f")])
    wanted = blob_digests(src, "app", "1")
    with CountingProxy(dst, fault=mount_ignored) as proxy:
        config = make_config({"src": src, "dst": proxy.url},
                             [rule("app", "mirror/a"), rule("app", "mirror/b")])
        report = await run(config, UploadMemory(), ["1"])
        mounts = proxy.count("POST", r"/blobs/uploads/$")

    assert [r.outcome for r in report.results] == [Outcome.COPIED, Outcome.COPIED]
    for repo in ("mirror/a", "mirror/b"):
        assert manifest_digest(dst, repo, "1") == manifest_digest(src, "app", "1")
    log = [e for e in dst.access_log() if "/blobs/uploads/" in e.path]
    commits = Counter((e.path.split("/blobs/")[0], query_digest(e)) for e in log
                      if e.method == "PUT" and e.status == 201)
    assert sorted(commits.values()) == [1] * 2 * len(wanted)  # each blob once per repository
    # the second repository's mount of each blob came back 202: its session took the upload
    assert mounts == 2 * len(wanted) and not [e for e in log if e.method == "DELETE"]


def refuses_one_piece(minimum: int) -> Any:
    """A registry that takes at most 64 KiB per PUT body and wants parts of `minimum` bytes."""

    def hook(request: ProxyRequest) -> Fault | None:
        length = int(request.headers.get("Content-Length") or 0)
        if request.method == "PUT" and length > 64 * 1024:
            return Fault.http_status(413)
        if request.method == "POST":
            return Fault(add_headers=(("OCI-Chunk-Min-Length", str(minimum)),))
        return None

    return hook


async def test_registry_refusing_one_piece_bodies_gets_parts_of_its_minimum_length(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src, dst = registry, registry2
    minimum = 9 * MIB  # above regsync's own part size: the registry's minimum must win
    push_image(src, "app", "1", layers=[random_layer(20 * MIB, "big"), random_layer(2 * MIB, "b")])
    with CountingProxy(dst, fault=refuses_one_piece(minimum)) as proxy:
        config = make_config({"src": src, "dst": proxy.url}, [rule("app", "mirror/app")],
                             concurrency=1)
        memory = UploadMemory()
        report = await run(config, memory, ["1"])
        assert [r.outcome for r in report.results] == [Outcome.COPIED], report.results
        assert memory.in_parts("dst")
        requests = list(proxy.requests)

    assert manifest_digest(dst, "mirror/app", "1") == manifest_digest(src, "app", "1")
    refused = [r for r in requests
               if r.method == "PUT" and int(r.headers.get("Content-Length") or 0) > 64 * 1024]
    assert len(refused) == 1  # learnt once: the next large blob went in parts at once
    patches = [r for r in requests if r.method == "PATCH"]
    ranges = [r.headers["Content-Range"] for r in patches]
    lengths = [int(r.headers["Content-Length"]) for r in patches]
    assert sorted(ranges) == sorted(
        ["0-9437183", "9437184-18874367", "18874368-20971519", "0-2097151"]
    ), ranges
    # the last part of each blob may be short, the others are at least the minimum
    assert sorted(lengths) == sorted([minimum, minimum, 2 * MIB, 2 * MIB])


async def test_digest_mismatch_on_the_streamed_put_commits_nothing_and_writes_no_tag(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src, dst = registry, registry2
    layer = random_layer(6 * MIB, "bad")
    push_image(src, "app", "1", layers=[layer])
    digest = blob_digests(src, "app", "1")[1]
    corrupt = Fault.corrupt()  # same length, one byte flipped: only the hash can tell

    def hook(request: ProxyRequest) -> Fault | None:
        return corrupt if request.method == "GET" and request.path.endswith(digest) else None

    with CountingProxy(src, fault=hook) as bad_source, CountingProxy(dst) as target:
        config = make_config({"src": bad_source.url, "dst": target.url},
                             [rule("app", "mirror/app")])
        report = await run(config, UploadMemory(), ["1"])
        puts = target.requests_matching("PUT", r"/blobs/uploads/")

    assert report.results[0].outcome is Outcome.FAILED
    assert "hashing to" in report.results[0].reason
    # the layer went out as one streamed PUT with its size as Content-Length, never completed
    streamed = [p for p in puts if digest.replace(":", "%3A") in p.query]
    assert streamed and all(p.headers["Content-Length"] == str(len(layer)) for p in streamed)
    assert not target.requests_matching("PATCH", r"/blobs/uploads/")
    ended = [e.status for e in dst.access_log() if e.method == "PUT" and query_digest(e) == digest]
    assert ended and 201 not in ended  # the registry saw each PUT end short, committed none
    assert dst.count("HEAD", rf"/mirror/app/blobs/{digest}$", status=200) == 0
    assert manifest_digest(dst, "mirror/app", "1") is None
    with Pusher(dst) as pusher:
        assert not pusher.blob_exists("mirror/app", digest)


def test_kill_9_during_a_streamed_put_commits_nothing(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    src, dst = registry, registry2
    layer = random_layer(12 * MIB, "kill")
    push_image(src, "app", "1", layers=[layer])
    digest = blob_digests(src, "app", "1")[1]
    stall = Fault.stalled(60, after=4 * MIB)  # the source goes silent mid-blob

    def hook(request: ProxyRequest) -> Fault | None:
        return stall if request.method == "GET" and request.path.endswith(digest) else None

    with CountingProxy(src, fault=hook) as slow_source, CountingProxy(dst) as target:
        config = tmp_path / "sync.yaml"
        config.write_text(yaml.safe_dump(make_config(
            {"src": slow_source.url, "dst": target.url}, [rule("app", "mirror/app")])))
        with open(tmp_path / "regsyncd.log", "wb") as log:
            proc = subprocess.Popen([REGSYNCD, "once", "--config", str(config)],
                                    stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while not [p for p in target.requests_matching("PUT", r"/blobs/uploads/")
                       if digest.replace(":", "%3A") in p.query]:
                assert time.monotonic() < deadline, "no streamed PUT of the layer began"
                assert proc.poll() is None, (tmp_path / "regsyncd.log").read_text()
                time.sleep(0.05)
            time.sleep(0.5)  # bytes are flowing into the PUT body
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert not target.requests_matching("PATCH", r"/blobs/uploads/")
        deadline = time.monotonic() + 10
        while not (ended := [e for e in dst.access_log()
                             if e.method == "PUT" and query_digest(e) == digest]):
            assert time.monotonic() < deadline, "the registry never saw the PUT end"
            time.sleep(0.05)

    assert [e.status for e in ended] != [201]  # the body ended short: refused, not committed
    with Pusher(dst) as pusher:
        assert not pusher.blob_exists("mirror/app", digest)
    assert manifest_digest(dst, "mirror/app", "1") is None


async def test_a_config_read_for_its_platform_is_not_read_again_to_copy_it(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src, dst = registry, registry2
    push_image(src, "single", "1", layers=[random_layer(4096, "p")])
    config_digest = blob_digests(src, "single", "1")[0]
    config = make_config({"src": src, "dst": dst},
                         [rule("single", "single", architectures=["amd64"])])
    report = await run(config, UploadMemory(), ["1"])

    assert [r.outcome for r in report.results] == [Outcome.COPIED]
    assert src.count("GET", rf"/blobs/{config_digest}$") == 1  # for the platform, and the copy
    assert json.loads(fetch_manifest(dst, "single", "1")[0])["config"]["digest"] == config_digest
    with Pusher(dst) as pusher:
        assert pusher.blob_exists("single", config_digest)
