"""Referrer tags and the fallback index merge (pure), and their place in the tag selection."""

from __future__ import annotations

import json

import httpx
import pytest
from regsync.daemon.base.errors import RemoteServerError, UnsupportedError
from regsync.daemon.config import parse_config
from regsync.daemon.engine.filters import rule_tags
from regsync.daemon.oci.referrers import (
    FOLLOWS_SUBJECT,
    MERGED_FROM,
    add_entries,
    fallback_entries,
    fallback_tag,
    is_referrer_tag,
    merge_fallback,
    merged_from,
    referrer_tags,
    tag_artifact_type,
    wanted_type,
)
from regsync.daemon.oci.types import OCI_INDEX
from regsync.daemon.registry.referrersapi import MAX_PAGES, Pages
from regsync.daemon.registry.session import Reply

HEX = "ab" * 32
D = f"sha256:{HEX}"


def _entry(n: int) -> dict[str, object]:
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": f"sha256:{n:064x}", "size": n, "artifactType": "application/spdx+json"}


def _index(*entries: dict[str, object], indent: int | None = None) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": list(entries)}, indent=indent).encode()


def test_tags_of_a_subject() -> None:
    assert fallback_tag(D) == f"sha256-{HEX}"
    assert referrer_tags(D) == tuple(f"sha256-{HEX}{s}" for s in ("", ".sig", ".att", ".sbom"))
    assert fallback_tag("sha512:" + "a" * 128) is None and referrer_tags("sha512:aa") == ()
    assert fallback_tag("sha256:abc") is None


@pytest.mark.parametrize(("tag", "expected"), [
    (f"sha256-{HEX}", True), (f"sha256-{HEX}.sig", True), (f"sha256-{HEX}.att", True),
    (f"sha256-{HEX}.sbom", True), (f"sha256-{HEX}.sig2", False), (f"sha256-{HEX[:-1]}", False),
    (f"sha256-{HEX.upper()}", False), ("latest", False), (f"x-sha256-{HEX}", False),
])  # fmt: skip
def test_is_referrer_tag(tag: str, expected: bool) -> None:
    assert is_referrer_tag(tag) is expected


def test_merge_keeps_source_bytes_when_the_target_adds_nothing() -> None:
    source = _index(_entry(1), _entry(2), indent=3)
    assert merge_fallback(source, "sha256:" + "0" * 64, None) == source
    assert merge_fallback(source, "sha256:" + "0" * 64, _index(_entry(2))) == source


def test_merge_never_drops_a_target_entry() -> None:
    source, origin = _index(_entry(1), _entry(2)), "sha256:" + "1" * 64
    target = _index(_entry(3), _entry(2), _entry(3), _entry(4))
    merged = merge_fallback(source, origin, target)
    assert [e["digest"] for e in fallback_entries(merged)] == [
        f"sha256:{n:064x}" for n in (1, 2, 3, 4)]
    assert json.loads(merged)["manifests"][2] == _entry(3)  # fields kept
    assert merged_from(merged) == origin and json.loads(merged)["annotations"] == {
        MERGED_FROM: origin}
    assert merged_from(source) is None and merged_from(b"junk") is None


def test_merge_ignores_a_junk_target_but_refuses_a_junk_source() -> None:
    source = _index(_entry(1))
    assert merge_fallback(source, "x", b"{not json") == source
    assert fallback_entries(b'{"manifests": [1, {"digest": 2}, {"digest": "d"}]}') == [
        {"digest": "d"}]
    with pytest.raises(TypeError):
        merge_fallback(b'{"manifests": {}}', "x", None)


def _rule(extra: str = "") -> str:
    return ("registries: {s: {url: 'http://s'}, d: {url: 'http://d'}}\n"
            "sync_rules: [{name: r, source: {registry: s, repository: a},"
            f" target: {{registry: d, repository: b}}, tags: {{latest: 1}}{extra}}}]\n")


def test_referrer_tags_follow_subjects_not_the_filters() -> None:
    tags = ["1.0", "2.0", f"sha256-{HEX}.sig", f"sha256-{HEX}"]
    (rule,) = parse_config(_rule()).rules
    assert rule.referrers is True
    selection = rule_tags(rule, tags)
    assert selection.kept == ("2.0",)  # latest: 1 does not count a signature as the latest
    assert (f"sha256-{HEX}.sig", FOLLOWS_SUBJECT) in selection.dropped
    (off,) = parse_config(_rule(", referrers: false").replace("latest: 1", "include: ['.']")).rules
    assert off.referrers is False  # opted out: they are tags like any other, as before
    assert set(rule_tags(off, tags).kept) == set(tags)


def test_add_entries_appends_what_the_target_lacks_only() -> None:
    new = add_entries(None, [_entry(1), _entry(1)])
    assert new is not None and json.loads(new)["manifests"] == [_entry(1)]
    assert json.loads(new)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    theirs = json.dumps({"schemaVersion": 2, "manifests": [_entry(3)],
                         "annotations": {"a": "b"}}).encode()
    merged = add_entries(theirs, [_entry(1), _entry(3)])
    assert merged is not None
    assert json.loads(merged) == {"schemaVersion": 2, "manifests": [_entry(3), _entry(1)],
                                  "annotations": {"a": "b"}}
    assert add_entries(merged, [_entry(1)]) is None


def test_a_merged_index_past_the_manifest_limit_is_refused_with_its_cause() -> None:
    """The source's index (up to 4 MiB) plus the target's own entries could pass the size a
    registry takes for a manifest; the PUT then failed with the target's error every run."""
    theirs = _index(*(_entry(n) for n in range(1, 14_000)))  # ~2.5 MiB of the target's own
    ours = _index(*(_entry(n) for n in range(20_000, 34_000)))
    with pytest.raises(UnsupportedError, match="merged index of referrers would be .* MiB"):
        merge_fallback(ours, D, theirs)
    with pytest.raises(UnsupportedError, match="delete that tag's stale entries"):
        add_entries(theirs, [_entry(n) for n in range(20_000, 34_000)])
    assert merge_fallback(ours, D, None) == ours  # the source's own, untouched, stays allowed


def test_merge_leaves_out_what_the_source_lost_and_says_so() -> None:
    source, origin = _index(_entry(1), _entry(2)), "sha256:" + "1" * 64
    merged = merge_fallback(source, origin, _index(_entry(3)),
                            gone=frozenset({f"sha256:{2:064x}"}))  # fmt: skip
    assert [e["digest"] for e in fallback_entries(merged)] == [
        f"sha256:{n:064x}" for n in (1, 3)]
    alone = merge_fallback(source, origin, None, gone=frozenset({f"sha256:{1:064x}"}))
    assert [e["digest"] for e in fallback_entries(alone)] == [f"sha256:{2:064x}"]
    assert merged_from(alone) == origin  # changed from the source's: a re-run must know it


def _page(entries: list[dict[str, object]], next_url: str | None = None) -> Reply:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    links = {"next": {"url": next_url}} if next_url else {}
    return Reply(200, httpx.Headers(), body.encode(), links)


def test_referrers_pages_join_into_one_index() -> None:
    pages = Pages(registry="src")
    assert pages.add(_page([_entry(1)], "/v2/a/referrers/x?page=1")) == "/v2/a/referrers/x?page=1"
    pages.visit("/v2/a/referrers/x?page=1")
    assert pages.add(_page([_entry(2), _entry(3)])) is None
    raw, index = pages.answer()
    assert [d.size for d in index.manifests] == [1, 2, 3]
    assert [e["digest"] for e in fallback_entries(raw.raw)] == [d.digest for d in index.manifests]
    one = Pages(registry="src")
    first = _page([_entry(1)])
    one.add(first)
    assert one.answer()[0].raw == first.body  # a single page is kept as served


def test_hostile_referrers_pages_are_refused() -> None:
    empty = Pages(registry="src")
    with pytest.raises(RemoteServerError, match="empty page that links"):
        empty.add(_page([], "/v2/a/referrers/x?page=1"))
    looping = Pages(registry="src")
    looping.visit("/p1")
    with pytest.raises(RemoteServerError, match="pages loop"):
        looping.visit("/p1")
    endless = Pages(registry="src")
    with pytest.raises(RemoteServerError, match=f"more than {MAX_PAGES} pages"):
        for n in range(MAX_PAGES + 1):
            endless.visit(f"/p{n}")
    big = Pages(registry="src")
    entries = [_entry(n) for n in range(1, 10_000)]
    with pytest.raises(UnsupportedError, match="larger than 4 MiB"):
        for _ in range(10):
            big.add(_page(entries, "/next"))
    assert big.bytes_left == 0


def test_artifact_types_of_entries_and_cosign_tags() -> None:
    assert tag_artifact_type(f"sha256-{HEX}.sig") == "application/vnd.dev.cosign.artifact.sig.v1+json"
    assert tag_artifact_type(f"sha256-{HEX}.att") == "application/vnd.dev.cosign.artifact.att.v1+json"
    assert tag_artifact_type(f"sha256-{HEX}") is None
    assert wanted_type("application/spdx+json", ())
    assert wanted_type(None, ())  # no choice: everything follows, typed or not
    assert not wanted_type(None, ("application/spdx+json",))
    assert wanted_type("application/spdx+json", ("a/b", "application/spdx+json"))


def test_a_merge_leaving_out_types_keeps_what_the_target_lists() -> None:
    source = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                         "manifests": [_entry(1), _entry(2)]}).encode()
    target = json.dumps({"schemaVersion": 2, "manifests": [_entry(2), _entry(9)]}).encode()
    unwanted = frozenset({str(_entry(2)["digest"])})
    merged = merge_fallback(source, "sha256:src", target, gone=unwanted, types=("a/b",))
    assert [e["size"] for e in fallback_entries(merged)] == [1, 2, 9]
    assert merged_from(merged, ("a/b",)) == "sha256:src"
    assert merged_from(merged) is None  # merged under other artifact types: not current
