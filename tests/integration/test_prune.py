"""Pruning against the real registry (distribution 2.8: deletes by digest only; with
`storage.delete.enabled` on and off), and OCI 1.1 tag deletes through a proxy that untags in
the real registry's own storage (2.8 cannot be asked to)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from regsync.daemon.cli.main import main
from regsync.daemon.engine.events import LogEvent, Outcome, TagResult, discard
from regsync.daemon.engine.report import RunReport
from regsync.daemon.engine.run import Run, open_ports, sync
from support.images import fallback_tag, manifest_digest, push_cosign, push_image, random_layer
from support.proxy import CountingProxy, Fault, ProxyRequest
from support.registry import RegistryFactory, RegistryServer
from support.syncrun import Recorder, load, make_config, rule

pytestmark = pytest.mark.integration


def _push(server: RegistryServer, repo: str, *tags: str) -> dict[str, str]:
    """One distinct image per tag."""
    return {t: push_image(server, repo, t, layers=[random_layer(64, f"{repo}-{t}")], oci=True)
            for t in tags}


def _tags(server: RegistryServer | CountingProxy, repo: str) -> set[str]:
    reply = httpx.get(f"{server.url}/v2/{repo}/tags/list")
    if reply.status_code == 404:
        return set()
    return set(reply.json().get("tags") or [])


def _delete(server: RegistryServer, repo: str, digest: str) -> None:
    assert httpx.delete(f"{server.url}/v2/{repo}/manifests/{digest}").status_code == 202


async def _run(data: dict[str, Any], *, force: bool = False,
               keep: bool = True) -> tuple[RunReport, list[str]]:
    config = load(data)
    recorder = Recorder()
    report = await sync(config.enabled_rules(), config.registries, config.global_, sink=recorder,
                        force_prune=force, keep_results=keep)
    logs = [e.message for e in recorder.events if isinstance(e, LogEvent)]
    return report, logs


def _deleted(report: RunReport) -> dict[str, str]:
    return {r.tag: r.digest for r in report.results if r.outcome is Outcome.DELETED}


def _failed(report: RunReport) -> list[TagResult]:
    return [r for r in report.results if r.outcome is Outcome.FAILED]


def _config(src: Any, dst: Any, **extra: Any) -> dict[str, Any]:
    return make_config({"src": src, "dst": dst}, [rule("app", "m", prune=True, **extra)])


async def test_a_tag_deleted_at_the_source_goes_from_the_target(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    d = _push(registry, "app", "1.0", "1.1", "1.2")
    mine = _push(registry2, "m", "mine")  # someone else's tag: the target mirrors the selection
    data = _config(registry, registry2, prune_max=3)
    first, _ = await _run(data)
    assert first.ok, first.results
    assert _deleted(first) == mine
    assert _tags(registry2, "m") == {"1.0", "1.1", "1.2"}
    _delete(registry, "app", d["1.2"])
    _push(registry, "app", "1.3")
    before = len(registry2.access_log())
    second, logs = await _run(data)
    assert second.ok, second.results
    assert _deleted(second) == {"1.2": d["1.2"]}
    assert second.counters.tags_deleted == 1 and second.counters.tags_copied == 1
    assert _tags(registry2, "m") == {"1.0", "1.1", "1.3"}
    writes = [e.method for e in registry2.access_log()[before:] if e.method in ("PUT", "DELETE")]
    assert writes[-1] == "DELETE" and writes.index("DELETE") > max(
        i for i, m in enumerate(writes) if m == "PUT"), "a deletion before a copy ended"
    assert any(f"pruned 1.2 ({d['1.2']})" in line for line in logs), logs
    deleted = next(r for r in second.results if r.outcome is Outcome.DELETED)
    assert deleted.repository == "app" and "not in the rule's selection" in deleted.reason


async def test_without_prune_nothing_is_deleted(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    d = _push(registry, "app", "1.0", "1.1")
    data = make_config({"src": registry, "dst": registry2}, [rule("app", "m")])
    await _run(data)
    _delete(registry, "app", d["1.1"])
    report, _ = await _run(data)
    assert _deleted(report) == {}
    assert _tags(registry2, "m") == {"1.0", "1.1"}


async def test_a_narrower_latest_prunes_the_oldest(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    d = _push(registry, "app", "1.0", "1.1", "1.2", "1.3")
    await _run(_config(registry, registry2, tags={"latest": 4}))
    report, _ = await _run(_config(registry, registry2, tags={"latest": 2}))
    assert report.ok, report.results
    assert _deleted(report) == {"1.0": d["1.0"], "1.1": d["1.1"]}
    assert _tags(registry2, "m") == {"1.2", "1.3"}


async def test_two_tags_sharing_a_digest(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    """distribution deletes by digest only: a tag sharing its digest with a kept tag is reported
    and stays; two unselected tags sharing one digest go with one DELETE."""
    layer = [random_layer(64, "shared")]
    shared = push_image(registry, "app", "1.0", layers=layer, oci=True)
    push_image(registry, "app", "stable", layers=layer, oci=True)
    both = push_image(registry, "app", "old-a", layers=[random_layer(64, "old")], oci=True)
    push_image(registry, "app", "old-b", layers=[random_layer(64, "old")], oci=True)
    _push(registry, "app", "2.0", "2.1")
    await _run(_config(registry, registry2, prune_max="100%"))
    assert _tags(registry2, "m") == {"1.0", "stable", "old-a", "old-b", "2.0", "2.1"}
    narrower = _config(registry, registry2, prune_max="100%",
                       tags={"exclude": ["^stable$", "^old-"]})
    report, logs = await _run(narrower)
    assert report.ok, report.results
    assert _deleted(report) == {"old-a": both, "old-b": both}
    assert registry2.count("DELETE", rf"/v2/m/manifests/{both}") == 1
    assert _tags(registry2, "m") == {"1.0", "stable", "2.0", "2.1"}
    assert manifest_digest(registry2, "m", "1.0") == shared
    assert any("stable" in line and "kept tag '1.0'" in line for line in logs), logs


async def test_a_failed_listing_prunes_nothing(
    registry_factory: RegistryFactory, registry2: RegistryServer
) -> None:
    source = registry_factory()
    _push(source, "app", "1.0", "1.1")
    _push(registry2, "m", "extra")
    data = _config(source, registry2, prune_max="100%")
    source.stop()  # the listing fails (connection refused)
    report, logs = await _run(data)
    assert _failed(report) and _deleted(report) == {}
    assert _tags(registry2, "m") == {"extra"}
    assert any("prune skipped" in line for line in logs), logs
    assert registry2.count("DELETE", r"/manifests/") == 0


async def test_a_failed_tag_prunes_nothing(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    _push(registry, "app", "1.0", "1.1")
    _push(registry2, "m", "extra")

    def fail_one(request: ProxyRequest) -> Fault | None:
        return Fault.http_status(500) if request.path.endswith("/manifests/1.1") else None

    with CountingProxy(registry, fault=fail_one) as proxy:
        report, logs = await _run(_config(proxy, registry2, prune_max="100%"))
    assert [r.tag for r in _failed(report)] == ["1.1"]
    assert _deleted(report) == {}
    assert "extra" in _tags(registry2, "m")
    assert any("prune skipped: 1 of this rule's results failed" in line for line in logs)


async def test_a_failed_tag_prunes_nothing_in_a_run_that_keeps_no_results(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    """The daemon's runs and `once` keep counters, not every result: the failure still stops
    the prune (the run counts failures per rule)."""
    _push(registry, "app", "1.0", "1.1")
    _push(registry2, "m", "extra")

    def fail_one(request: ProxyRequest) -> Fault | None:
        return Fault.http_status(500) if request.path.endswith("/manifests/1.1") else None

    with CountingProxy(registry, fault=fail_one) as proxy:
        report, logs = await _run(_config(proxy, registry2, prune_max="100%"), keep=False)
    assert report.results == [] and [r.tag for r in report.failures] == ["1.1"]
    assert report.counters.tags_deleted == 0 and "extra" in _tags(registry2, "m")
    assert any("prune skipped: 1 of this rule's results failed" in line for line in logs)


async def test_the_limit_stops_a_prune_unless_forced(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    d = _push(registry, "app", "1.0", "1.1", "1.2", "1.3")
    data = _config(registry, registry2)  # the default limit: 50% of the target's tags
    await _run(data)
    for tag in ("1.0", "1.1", "1.2"):
        _delete(registry, "app", d[tag])
    report, _ = await _run(data)
    [stopped] = _failed(report)
    assert stopped.error_kind == "prune-limit"
    assert "3 of 4 target tags, over prune_max 50%" in stopped.reason
    assert _tags(registry2, "m") == {"1.0", "1.1", "1.2", "1.3"}
    assert registry2.count("DELETE", r"/manifests/") == 0
    counted, _ = await _run(_config(registry, registry2, prune_max=2))
    assert "over prune_max 2;" in _failed(counted)[0].reason
    forced, _ = await _run(data, force=True)
    assert forced.ok, forced.results
    assert set(_deleted(forced)) == {"1.0", "1.1", "1.2"}
    assert _tags(registry2, "m") == {"1.3"}


async def test_referrer_tags_follow_their_subjects(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    d = _push(registry, "app", "1.0", "1.1", "1.2")
    kept_sig = push_cosign(registry, "app", d["1.0"])
    gone_sig = push_cosign(registry, "app", d["1.1"])
    data = _config(registry, registry2)
    await _run(data)
    kept_tag, gone_tag = fallback_tag(d["1.0"]) + ".sig", fallback_tag(d["1.1"]) + ".sig"
    assert {kept_tag, gone_tag} <= _tags(registry2, "m")
    _delete(registry, "app", d["1.1"])
    report, _ = await _run(data)
    assert report.ok, report.results
    assert _deleted(report) == {"1.1": d["1.1"], gone_tag: gone_sig}
    reasons = {r.tag: r.reason for r in report.results if r.outcome is Outcome.DELETED}
    assert "subject is gone" in reasons[gone_tag]
    assert _tags(registry2, "m") == {"1.0", "1.2", kept_tag}
    assert manifest_digest(registry2, "m", kept_tag) == kept_sig
    # the subject goes first, then its signature
    deletes = [e.path for e in registry2.access_log() if e.method == "DELETE"]
    assert deletes.index(f"/v2/m/manifests/{d['1.1']}") < deletes.index(
        f"/v2/m/manifests/{gone_sig}")


async def test_a_registry_refusing_deletes_names_its_setting(
    registry: RegistryServer, registry_factory: RegistryFactory
) -> None:
    target = registry_factory(delete=False)
    d = _push(registry, "app", "1.0", "1.1", "1.2")
    data = _config(registry, target)
    await _run(data)
    _delete(registry, "app", d["1.2"])
    report, _ = await _run(data)
    [refused] = _failed(report)
    assert refused.error_kind == "delete-refused"
    assert "storage.delete.enabled" in refused.reason and "Harbor" in refused.reason
    assert _tags(target, "m") == {"1.0", "1.1", "1.2"}


def _untagging_proxy(target: RegistryServer) -> CountingProxy:
    """OCI 1.1 `DELETE /v2/<name>/manifests/<tag>`: removes the tag only (in the registry's
    filesystem storage: distribution 2.8 itself deletes by digest only)."""

    def untag(request: ProxyRequest) -> Fault | None:
        if request.method != "DELETE" or "/manifests/sha256:" in request.path:
            return None
        repo, _, tag = request.path.removeprefix("/v2/").partition("/manifests/")
        tag_dir = (Path(target.data_dir) / "docker/registry/v2/repositories" / repo
                   / "_manifests/tags" / tag)
        if not tag_dir.is_dir():
            return Fault.http_status(404)
        shutil.rmtree(tag_dir)
        return Fault.http_status(202)

    return CountingProxy(target, fault=untag)


async def test_a_registry_deleting_tags_by_name_keeps_shared_manifests(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    layer = [random_layer(64, "shared")]
    shared = push_image(registry, "app", "1.0", layers=layer, oci=True)
    push_image(registry, "app", "stable", layers=layer, oci=True)
    _push(registry, "app", "2.0", "2.1")
    with _untagging_proxy(registry2) as proxy:
        await _run(_config(registry, proxy))
        report, _ = await _run(_config(registry, proxy, tags={"exclude": ["^stable$"]}))
        assert report.ok, report.results
        assert _deleted(report) == {"stable": shared}
        assert proxy.count("DELETE", r"/v2/m/manifests/stable$") == 1
        assert proxy.count("DELETE", r"/manifests/sha256:") == 0
    assert _tags(registry2, "m") == {"1.0", "2.0", "2.1"}
    assert manifest_digest(registry2, "m", "1.0") == shared


def test_check_lists_the_deletions_apart_from_the_copies(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`regsyncd check` (HEADs only, nothing written): what would be copied, then what would be
    pruned, a tag sharing a kept digest flagged, and a note when the limit would stop it."""
    layer = [random_layer(64, "one")]
    one = push_image(registry, "app", "1.0", layers=layer, oci=True)
    _push(registry, "app", "1.1")
    push_image(registry2, "m", "1.0", layers=layer, oci=True)
    push_image(registry2, "m", "alias", layers=layer, oci=True)
    old = _push(registry2, "m", "old")["old"]
    config = tmp_path / "sync.yaml"
    config.write_text(yaml.safe_dump(_config(registry, registry2, prune_max=1)))
    main(["check", "--config", str(config)])
    out = capsys.readouterr().out
    assert "copy  1.1" in out and "skip  1.0" in out
    assert "prune: 2 target tags to delete after the copies" in out
    assert "prune alias" in out and f"{one}" in out and "like the kept tag '1.0'" in out
    assert "prune old" in out and old in out
    assert "note: prune stopped: it would delete 2 of 4 target tags, over prune_max 1" in out
    assert registry2.count("DELETE", r"/manifests/") == 0
    assert _tags(registry2, "m") == {"1.0", "alias", "old"}


async def test_a_glob_rule_prunes_each_matched_repository(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    a = _push(registry, "team/a", "1", "2")
    _push(registry, "team/b", "1")
    rules = [{**rule("team/*", "dr/*", prune=True, prune_max="100%"), "name": "team"}]
    data = make_config({"src": registry, "dst": registry2}, rules)
    first, _ = await _run(data)
    assert first.ok, first.results
    _delete(registry, "team/a", a["2"])
    config = load(data)
    async with open_ports(config.registries, config.global_, ["src", "dst"]) as ports:
        run = Run(config.global_, config.registries, sink=discard, ports=ports)
        selection, plans = await run.plan(config.rules[0])
        planned = await run.plan_prune(config.rules[0], selection, plans)
    assert planned is not None and planned.notes == ()
    assert [(d.tag, d.digest) for d in planned.deletions] == [("team/a:2", a["2"])]
    report, _ = await _run(data)
    assert report.ok, report.results
    assert [(r.repository, r.tag) for r in report.results if r.outcome is Outcome.DELETED] == [
        ("team/a", "2")]
    assert _tags(registry2, "dr/a") == {"1"} and _tags(registry2, "dr/b") == {"1"}


async def test_deletes_ask_a_token_for_the_delete_action(
    registry: RegistryServer, token_registry: RegistryServer
) -> None:
    """Token auth: the DELETE needs `repository:<name>:delete`; a token without it is refused
    (distribution answers 401), and nothing else of the target changes."""
    d = _push(registry, "app", "1.0", "1.1", "1.2")
    data = _config(registry, token_registry)
    await _run(data)
    _delete(registry, "app", d["1.2"])
    service = token_registry.token_service
    assert service is not None
    service.grants[token_registry.username] = frozenset({"pull", "push"})
    refused, _ = await _run(data)
    [failed] = _failed(refused)
    assert failed.error_kind == "auth" and _deleted(refused) == {}
    assert manifest_digest(token_registry, "m", "1.2") == d["1.2"]
    service.grants[token_registry.username] = frozenset({"pull", "push", "delete"})
    report, _ = await _run(data)
    assert report.ok, report.results
    assert _deleted(report) == {"1.2": d["1.2"]}
    assert manifest_digest(token_registry, "m", "1.2") is None
    assert manifest_digest(token_registry, "m", "1.1") == d["1.1"]
    asked = {a for r in service.requests for s in r.scopes if s.name == "m" for a in s.actions}
    assert "delete" in asked


async def test_a_registry_answering_the_tag_form_with_404_is_deleted_from_by_digest(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    """A 404 to `DELETE .../manifests/<tag>` while the tag is still there means "not by tag
    here", not "gone": the prune goes on by digest instead of believing it done."""
    d = _push(registry, "app", "1.0", "1.1", "1.2")

    def no_tag_form(request: ProxyRequest) -> Fault | None:
        by_tag = request.method == "DELETE" and "/manifests/sha256:" not in request.path
        return Fault.http_status(404) if by_tag else None

    with CountingProxy(registry2, fault=no_tag_form) as proxy:
        data = _config(registry, proxy)
        await _run(data)
        _delete(registry, "app", d["1.2"])
        report, _ = await _run(data)
    assert report.ok, report.results
    assert _deleted(report) == {"1.2": d["1.2"]}
    assert _tags(registry2, "m") == {"1.0", "1.1"}


async def test_one_failed_listing_of_a_glob_rule_prunes_none_of_its_repositories(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    _push(registry, "team/a", "1")
    b = _push(registry, "team/b", "1", "2")
    rules = [{**rule("team/*", "dr/*", prune=True, prune_max="100%"), "name": "team"}]
    await _run(make_config({"src": registry, "dst": registry2}, rules))
    _delete(registry, "team/b", b["2"])

    def fail_a(request: ProxyRequest) -> Fault | None:
        return Fault.http_status(500) if request.path == "/v2/team/a/tags/list" else None

    with CountingProxy(registry, fault=fail_a) as proxy:
        report, logs = await _run(make_config({"src": proxy, "dst": registry2}, rules))
    assert [r.repository for r in _failed(report)] == ["team/a"]
    assert _deleted(report) == {}
    assert _tags(registry2, "dr/b") == {"1", "2"}
    assert any("prune skipped: 1 of this rule's results failed" in line for line in logs)


def _manifest_deleting_proxy(target: RegistryServer) -> CountingProxy:
    """A registry that answers a tag DELETE with 202 but deletes the manifest (every tag of
    it), as a registry without OCI 1.1 tag deletes might."""

    def by_digest(request: ProxyRequest) -> Fault | None:
        if request.method != "DELETE" or "/manifests/sha256:" in request.path:
            return None
        repo, _, tag = request.path.removeprefix("/v2/").partition("/manifests/")
        digest = manifest_digest(target, repo, tag)
        if digest is None:
            return Fault.http_status(404)
        _delete(target, repo, digest)
        return Fault.http_status(202)

    return CountingProxy(target, fault=by_digest)


async def test_a_tag_delete_that_took_a_kept_tag_along_switches_to_digests(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    one = [random_layer(64, "one")]
    two = [random_layer(64, "two")]
    first = push_image(registry, "app", "1.0", layers=one, oci=True)
    push_image(registry, "app", "stable", layers=one, oci=True)
    second = push_image(registry, "app", "2.0", layers=two, oci=True)
    push_image(registry, "app", "zeta", layers=two, oci=True)
    data = _config(registry, registry2, tags={"exclude": ["^stable$", "^zeta$"]})
    with _manifest_deleting_proxy(registry2) as proxy:
        await _run(_config(registry, proxy))
        report, logs = await _run(_config(registry, proxy,
                                          tags={"exclude": ["^stable$", "^zeta$"]}))
    # the first tag deleted (the listing's order) took its kept sibling along; the other one,
    # now deleted by digest only, is blocked by its own kept sibling
    pairs = {"stable": ("1.0", first), "zeta": ("2.0", second)}
    [gone] = _deleted(report)
    [other] = set(pairs) - {gone}
    lost, standing = pairs[gone][0], pairs[other][0]
    assert any(f"removed the kept tag {lost} too" in line for line in logs), logs
    assert any(other in line and f"kept tag '{standing}'" in line for line in logs), logs
    assert _tags(registry2, "m") == {standing, other}
    again, _ = await _run(data)  # the next run copies the lost tag again
    assert again.ok and manifest_digest(registry2, "m", lost) == pairs[gone][1]
