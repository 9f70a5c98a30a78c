"""Pruning on the in-memory port (daemon/oci/memory.py): the run's order and the two delete
forms, asserted on the operations the engine asked for, in milliseconds."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest
from regsync.daemon.base.errors import NetworkError, RemoteServerError
from regsync.daemon.engine.events import Outcome, discard
from regsync.daemon.engine.report import RunReport
from regsync.daemon.engine.run import Run
from regsync.daemon.oci.memory import MemoryPort
from regsync.daemon.oci.port import RegistryPort
from regsync.daemon.oci.types import RawManifest
from regsync.daemon.settings import (
    Endpoint,
    GlobalSettings,
    SyncRule,
    TagFilter,
)
from regsync.daemon.values.platform import Platform
from regsync.daemon.values.prunelimit import PruneLimit
from support.memimages import NO_RETRY, REGISTRIES, push_image, push_index


async def run(ports: Mapping[str, RegistryPort], rule: SyncRule) -> RunReport:
    engine = Run(GlobalSettings(retry=NO_RETRY), REGISTRIES, sink=discard, ports=ports,
                 keep_results=True)
    return await engine.execute([rule])


ALL_TAGS = TagFilter()


def pruning(tags: TagFilter = ALL_TAGS) -> SyncRule:
    return SyncRule("r", Endpoint("src", "app"), Endpoint("dst", "m"), tags=tags, prune=True,
                    prune_max=PruneLimit(100, percent=True))


def deleted(report: RunReport) -> dict[str, str]:
    return {r.tag: r.digest for r in report.results if r.outcome is Outcome.DELETED}


def image(port: MemoryPort, repo: str, tag: str, seed: str) -> RawManifest:
    return push_image(port, repo, [seed.encode()], tag=tag)


@pytest.mark.parametrize("by_tag", [True, False])
async def test_a_tag_gone_from_the_source_goes_after_every_copy(by_tag: bool) -> None:
    src, dst = MemoryPort("src"), MemoryPort("dst", tag_deletes=by_tag)
    image(src, "app", "1.0", "a")
    image(src, "app", "2.0", "b")
    old = image(dst, "m", "old", "c")
    ports: dict[str, RegistryPort] = {"src": src, "dst": dst}
    report = await run(ports, pruning())
    assert report.ok, report.results
    assert deleted(report) == {"old": old.digest}
    names = [op.name for op in dst.ops]
    last_put = max(i for i, n in enumerate(names) if n == "manifest.put")
    first_delete = min(i for i, n in enumerate(names) if n.startswith("manifest.delete"))
    assert last_put < first_delete
    expected = "manifest.delete.tag" if by_tag else "manifest.delete"
    assert dst.count(expected, "old" if by_tag else old.digest) == 1
    assert dst.tag_digest("m", "old") is None and dst.tag_digest("m", "1.0") is not None


async def test_by_tag_a_tag_sharing_a_kept_digest_goes_and_the_kept_one_stays() -> None:
    src, dst = MemoryPort("src"), MemoryPort("dst")
    kept = image(src, "app", "1.0", "a")
    image(dst, "m", "alias", "a")
    report = await run({"src": src, "dst": dst}, pruning())
    assert deleted(report) == {"alias": kept.digest}
    assert dst.tag_digest("m", "1.0") == kept.digest
    assert dst.count("manifest.delete") == 0


async def test_by_digest_a_child_of_a_kept_index_is_never_deleted() -> None:
    """Someone tagged a platform image the kept index lists: deleting that digest would break
    the index, so the tag is reported and stays."""
    src, dst = MemoryPort("src"), MemoryPort("dst", tag_deletes=False)
    amd = image(src, "app", "amd", "a")
    push_index(src, "app", "1.0", [(amd, Platform("linux", "amd64"))])
    only_index = pruning(TagFilter(include=(r"^1\.0$",)))
    await run({"src": src, "dst": dst}, dataclasses.replace(only_index, prune=False))
    push_image(dst, "m", [b"a"], tag="amd")  # the child, tagged on the target by someone
    report = await run({"src": src, "dst": dst}, only_index)
    assert deleted(report) == {}
    assert dst.tag_digest("m", "amd") == amd.digest and dst.count("manifest.delete") == 0
    assert dst.count("manifest.get") >= 1  # the kept index was read for its children


async def test_nothing_is_deleted_when_a_tag_failed() -> None:
    src, dst = MemoryPort("src"), MemoryPort("dst")
    image(src, "app", "1.0", "a")
    image(dst, "m", "old", "c")
    src.fail("manifest.get", lambda: NetworkError("reset"), reference="1.0")
    src.fail("manifest.head", lambda: NetworkError("reset"), reference="1.0")
    report = await run({"src": src, "dst": dst}, pruning())
    assert not report.ok and deleted(report) == {}
    assert dst.count("manifest.delete.tag") == 0 and dst.tag_digest("m", "old") is not None


@pytest.mark.parametrize("failing", ["a", "b"])
async def test_a_glob_repository_whose_prune_fails_does_not_stop_the_others(failing: str) -> None:
    """A prune that fails counts as a failure of its rule; the rule's other repositories were
    then skipped or not depending on which was pruned first (the count was read live)."""
    src, dst = MemoryPort("src"), MemoryPort("dst")
    stale = {}
    for repo in ("a", "b"):
        image(src, f"team/{repo}", "1.0", repo)
        stale[repo] = image(dst, f"m/{repo}", f"stale-{repo}", f"old-{repo}").digest
    dst.fail("manifest.delete.tag", lambda: RemoteServerError("refused", registry="dst"),
             reference=f"stale-{failing}")
    rule = SyncRule("r", Endpoint("src", "team/*"), Endpoint("dst", "m/*"), prune=True,
                    prune_max=PruneLimit(100, percent=True))
    report = await run({"src": src, "dst": dst}, rule)
    other = "b" if failing == "a" else "a"
    assert deleted(report) == {f"stale-{other}": stale[other]}
    assert dst.tag_digest(f"m/{other}", f"stale-{other}") is None
    assert dst.tag_digest(f"m/{failing}", f"stale-{failing}") == stale[failing]
    assert report.failed_by_rule == {"r": 1}
