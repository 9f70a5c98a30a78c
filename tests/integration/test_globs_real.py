"""Glob rules against real registries: discovery from the catalog, one run for the scope."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from regsync.daemon.cli.main import main
from regsync.daemon.engine.events import LogEvent, Outcome, TagFinished, discard
from regsync.daemon.engine.report import KEPT_FAILURES
from regsync.daemon.engine.run import Run, open_ports, sync
from regsync.daemon.registry import listing
from support.fakeregistry import Answer, FakeRegistry, Served, _error
from support.images import manifest_digest, push_image, random_layer, sha256
from support.registry import RegistryServer
from support.syncrun import Recorder, load, make_config, rule, run_sync

pytestmark = pytest.mark.integration

GLOB = rule("team-a/**", "dr/team-a/**")


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Catalog pages of two names: a catalog of several pages on a small registry."""
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    yield


def by_repository(results: object) -> dict[tuple[str, str], Outcome]:
    return {(r.repository, r.tag): r.outcome for r in results}  # type: ignore[attr-defined]


async def test_a_glob_covers_repositories_at_several_depths_in_one_run(
    token_registry: RegistryServer, registry2: RegistryServer, small_pages: None
) -> None:
    """Token auth with scope registry:catalog:*, a catalog of several pages, an exclude, names
    with dots, dashes and underscores, the same tag in several repositories, a shared base
    layer that crosses once; then a repository added between runs is picked up, and a no-op
    re-run issues no source manifest GET."""
    base = random_layer(100_000, seed="base")
    repos = ["team-a/web", "team-a/api/v2", "team-a/x.y_z-w/deep__er", "team-a/old/legacy",
             "team-b/web"]
    for seed, repo in enumerate(repos):
        push_image(token_registry, repo, "1.0", layers=[base, random_layer(2000, seed=seed)])
    data = make_config({"src": token_registry, "dst": registry2},
                       [{**GLOB, "source": {**GLOB["source"], "exclude": ["team-a/old/**"]}}])

    report = await run_sync(data)

    assert report.ok, report.results
    wanted = {("team-a/web", "1.0"), ("team-a/api/v2", "1.0"), ("team-a/x.y_z-w/deep__er", "1.0")}
    assert by_repository(report.results) == dict.fromkeys(wanted, Outcome.COPIED)
    for repo, tag in wanted:
        assert manifest_digest(registry2, "dr/" + repo, tag) == \
            manifest_digest(token_registry, repo, tag)
    assert manifest_digest(registry2, "dr/team-a/old/legacy", "1.0") is None
    assert manifest_digest(registry2, "dr/team-b/web", "1.0") is None
    assert token_registry.count("GET", r"^/v2/_catalog$") >= 3  # 5 names, 2 a page
    # one transfer of the shared base layer for the whole scope, whichever repository moved it
    assert token_registry.count("GET", r"/blobs/" + sha256(base) + "$") == 1

    push_image(token_registry, "team-a/new-one", "2.0", layers=[random_layer(3000, seed="n")])
    again = await run_sync(data)
    assert again.ok, again.results
    assert by_repository(again.results) == {
        **dict.fromkeys(wanted, Outcome.SKIPPED), ("team-a/new-one", "2.0"): Outcome.COPIED}

    before = token_registry.count("GET", r"/manifests/")
    idle = await run_sync(data)
    assert idle.ok and {r.outcome for r in idle.results} == {Outcome.SKIPPED}
    assert len(idle.results) == 4
    assert token_registry.count("GET", r"/manifests/") == before, "a no-op run GET a manifest"


async def test_single_segment_globs(registry: RegistryServer, registry2: RegistryServer) -> None:
    for repo in ("library/nginx", "library/redis", "library/deep/not", "shop/frontend",
                 "a/b/frontend"):
        push_image(registry, repo, "1", layers=[random_layer(1000, seed=repo)])
    data = make_config({"src": registry, "dst": registry2}, [
        rule("library/*", "mirror/*", name="lib"),
        rule("*/frontend", "fe/*/frontend", name="fe"),
    ])
    report = await run_sync(data)
    assert report.ok, report.results
    assert {(r.rule, r.repository) for r in report.results} == {
        ("lib", "library/nginx"), ("lib", "library/redis"), ("fe", "shop/frontend")}
    assert manifest_digest(registry2, "mirror/nginx", "1") is not None
    assert manifest_digest(registry2, "fe/shop/frontend", "1") is not None


async def test_catalog_names_that_are_not_repositories_are_never_requested(
    registry2: RegistryServer,
) -> None:
    with FakeRegistry() as fake:
        fake.add_image("team-a/ok", "1", b"layer")
        listed = ["team-a/ok", "team-a/../../v2/evil", "team-a/Upper", "team-a/x\x1b[2J"]

        def catalog(method: str, path: str, query: str) -> Answer | None:
            if path == "/v2/_catalog":
                body = json.dumps({"repositories": listed}).encode()
                return 200, Served(body, "application/json"), {}
            return None

        fake.hook = catalog
        config = load(make_config({"src": fake.url, "dst": registry2}, [GLOB]))
        recorder = Recorder()
        report = await sync(config.rules, config.registries, config.global_, sink=recorder, keep_results=True)
        assert report.ok, report.results
        assert {r.repository for r in report.results} == {"team-a/ok"}
        (warning,) = [e.message for e in recorder.events
                      if isinstance(e, LogEvent) and e.level == "warning"]
        assert warning.startswith("3 catalog names are not valid repository names, skipped")
        assert "\x1b" not in warning and "team-a/Upper" in warning
        assert not any("evil" in p or "Upper" in p or "\x1b" in p for _, p in fake.requests)


@pytest.mark.parametrize("status", [401, 404])
async def test_a_registry_without_a_catalog_says_to_list_repositories(
    registry2: RegistryServer, status: int
) -> None:
    code = "UNAUTHORIZED" if status == 401 else "NOT_FOUND"
    with FakeRegistry() as fake:
        fake.hook = lambda m, p, q: _error(status, code, "no") if p == "/v2/_catalog" else None
        data = make_config({"src": fake.url, "dst": registry2}, [GLOB])
        report = await run_sync(data)
        (result,) = report.results
        assert result.outcome is Outcome.FAILED and result.error_kind == "no-catalog"
        assert "does not list its repositories" in result.reason
        assert "list those repositories as separate rules" in result.reason


def test_check_plans_a_glob_per_repository_and_says_when_there_is_no_catalog(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    push_image(registry, "team-a/web", "1.0", layers=[random_layer(1000, seed="c")])
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(make_config({"src": registry, "dst": registry2}, [GLOB])))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "team-a/web:1.0" in out and "new tag" in out
    with FakeRegistry() as fake:
        fake.hook = lambda m, p, q: _error(404, "NOT_FOUND", "no") if "_catalog" in p else None
        path.write_text(yaml.safe_dump(make_config({"src": fake.url, "dst": registry2}, [GLOB])))
        assert main(["check", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "cannot plan" in out and "does not list its repositories (/v2/_catalog answered 404)" \
        in out and "list those repositories as separate rules" in out


async def test_retry_and_resume_work_per_repository_and_tag(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    """The same tag in two repositories is two items: retry takes `repository:tag` keys (a
    `repository:` key is that whole repository, whose listing failed), resume skips them."""
    for repo in ("team-a/web", "team-a/api", "team-a/db"):
        for tag in ("1.0", "1.1"):
            push_image(registry, repo, tag, layers=[random_layer(500, seed=repo + tag)])
    config = load(make_config({"src": registry, "dst": registry2}, [GLOB]))
    retry = await sync(config.rules, config.registries, config.global_, sink=Recorder(),
                       keep_results=True, only_tags={"rule0": {"team-a/web:1.0", "team-a/db:"}})
    assert {(r.repository, r.tag) for r in retry.results} == {
        ("team-a/web", "1.0"), ("team-a/db", "1.0"), ("team-a/db", "1.1")}
    # the rule as a whole failed (its catalog could not be listed): a retry takes everything
    whole = await sync(config.rules, config.registries, config.global_, sink=Recorder(),
                       keep_results=True, only_tags={"rule0": {""}})
    assert len(whole.results) == 6
    resume = await sync(config.rules, config.registries, config.global_, sink=Recorder(),
                        keep_results=True,
                        except_tags={"rule0": {"team-a/web:1.0", "team-a/db:1.0", "team-a/db:1.1"}})
    assert {(r.repository, r.tag) for r in resume.results} == {
        ("team-a/web", "1.1"), ("team-a/api", "1.0"), ("team-a/api", "1.1")}


async def test_one_repository_that_fails_to_list_costs_only_itself(
    registry2: RegistryServer,
) -> None:
    """The catalog still names a repository whose tags are gone (404): the run and the plan
    report that repository as failed and carry on with the others."""
    with FakeRegistry() as fake:
        fake.add_image("team-a/ok", "1", b"layer")

        def catalog(method: str, path: str, query: str) -> Answer | None:
            if path == "/v2/_catalog":
                body = json.dumps({"repositories": ["team-a/gone", "team-a/ok"]}).encode()
                return 200, Served(body, "application/json"), {}
            return None

        fake.hook = catalog
        config = load(make_config({"src": fake.url, "dst": registry2}, [GLOB]))
        report = await sync(config.rules, config.registries, config.global_, sink=Recorder(), keep_results=True)
        assert {(r.repository, r.tag, r.outcome, r.error_kind) for r in report.results} == {
            ("team-a/ok", "1", Outcome.COPIED, ""),
            ("team-a/gone", "", Outcome.FAILED, "not-found")}
        async with open_ports(config.registries, config.global_, ["src", "dst"]) as ports:
            run = Run(config.global_, config.registries, sink=discard, ports=ports)
            _, plans = await run.plan(config.rules[0])
        assert [(p.tag, p.action) for p in plans] == [("team-a/gone:", "fail"),
                                                       ("team-a/ok:1", "skip")]


async def test_the_catalog_is_walked_as_its_pages_come_and_results_are_not_held(
    registry2: RegistryServer,
) -> None:
    """The first page's repository is being copied while the catalog's second page is still
    held back (a run that read the whole catalog first would wait out the hold); the report
    counts the results, the sink gets each one, and the report keeps none of them."""
    with FakeRegistry() as fake:
        fake.add_image("team-a/a", "1", b"one")
        fake.add_image("team-a/b", "1", b"two")
        started, streamed = threading.Event(), []

        def gate(method: str, path: str, query: str) -> None:
            if path.startswith("/v2/team-a/a/manifests/sha256:") and method == "GET":
                started.set()
            elif path == "/v2/_catalog" and "last=" in query:
                streamed.append(started.wait(timeout=10))

        def catalog(method: str, path: str, query: str) -> Answer | None:
            if path != "/v2/_catalog":
                return None
            if "last=" not in query:
                link = '</v2/_catalog?last=team-a%2Fa&n=1000>; rel="next"'
                body = json.dumps({"repositories": ["team-a/a"]}).encode()
                return 200, Served(body, "application/json"), {"Link": link}
            body = json.dumps({"repositories": ["team-a/b"]}).encode()
            return 200, Served(body, "application/json"), {}

        fake.gate = gate
        fake.hook = catalog
        config = load(make_config({"src": fake.url, "dst": registry2}, [GLOB]))
        recorder = Recorder()
        report = await sync(config.rules, config.registries, config.global_, sink=recorder)
        assert streamed == [True], "the catalog was read whole before any copy began"
        assert report.ok and report.counters.tags_copied == 2 and report.repositories == 2
        assert report.results == [] and report.failures == []
        finished = [e.result for e in recorder.events if isinstance(e, TagFinished)]
        assert {(r.repository, r.outcome) for r in finished} == {
            ("team-a/a", Outcome.COPIED), ("team-a/b", Outcome.COPIED)}


async def test_a_catalog_listing_a_name_again_or_out_of_order_copies_it_once(
    registry2: RegistryServer,
) -> None:
    """A repeated name is skipped with a warning, so no repository is copied (or recorded)
    twice; a catalog out of lexical order (Quay lists by id) loses no repository."""
    with FakeRegistry() as fake:
        for repo in ("team-a/a", "team-a/b"):
            fake.add_image(repo, "1", repo.encode())
        listed = ["team-a/b", "team-a/a", "team-a/a", "team-a/b"]
        fake.hook = lambda m, p, q: (200, Served(json.dumps({"repositories": listed}).encode(),
                                                 "application/json"), {}) \
            if p == "/v2/_catalog" else None
        config = load(make_config({"src": fake.url, "dst": registry2}, [GLOB]))
        recorder = Recorder()
        report = await sync(config.rules, config.registries, config.global_, sink=recorder, keep_results=True)
        assert sorted((r.repository, r.tag) for r in report.results) == [
            ("team-a/a", "1"), ("team-a/b", "1")]
        warnings = [e.message for e in recorder.events
                    if isinstance(e, LogEvent) and e.level == "warning"]
        assert warnings == [("2 matching catalog names were listed again, skipped (each"
                             " repository is copied once)")]


async def test_a_report_keeps_the_first_failures_and_counts_the_rest(
    registry2: RegistryServer,
) -> None:
    """120 tags that fail (listed, but their manifests are gone): the report holds the first
    KEPT_FAILURES with their reasons and counts all of them; the run's first failure is the
    first one kept."""
    with FakeRegistry() as fake:
        for repo in ("team-a/a", "team-a/b", "team-a/c"):
            fake.tags[repo] = [f"v{n}" for n in range(40)]
        fake.hook = lambda m, p, q: (200, Served(json.dumps({"repositories": sorted(
            fake.tags)}).encode(), "application/json"), {}) if p == "/v2/_catalog" else None
        config = load(make_config({"src": fake.url, "dst": registry2}, [GLOB]))
        report = await sync(config.rules, config.registries, config.global_, sink=Recorder())
    assert report.counters.tags_failed == 120 and not report.ok
    assert len(report.failures) == KEPT_FAILURES == 100 and report.results == []
    assert {r.error_kind for r in report.failures} == {"not-found"}


async def test_the_referrers_api_is_probed_once_per_registry_not_per_repository(
    registry2: RegistryServer,
) -> None:
    """A source without the Referrers API (404, as distribution 2.8) is known as such after its
    first answers: 40 repositories do not probe it 40 times (at most the tags in flight race)."""
    with FakeRegistry() as fake:
        fake.referrers_api = False
        for n in range(40):
            fake.add_image(f"team-a/r{n:02}", "1", f"layer{n}".encode())
        fake.hook = lambda m, p, q: (200, Served(json.dumps({"repositories": sorted(
            fake.tags)}).encode(), "application/json"), {}) if p == "/v2/_catalog" else None
        config = load(make_config({"src": fake.url, "dst": registry2}, [GLOB]))
        report = await sync(config.rules, config.registries, config.global_, sink=Recorder())
        assert report.ok and report.counters.tags_copied == 40
        probes = [p for _, p in fake.requests if "/referrers/" in p]
        assert 1 <= len(probes) <= config.global_.tags_in_flight < 40
