"""The one plan both the copy and the dry run decide from (pure): every rung of its ladder, and
the lines a dry run shows for each action."""

from __future__ import annotations

import json

import pytest
from regsync.daemon.engine.plan import (
    NOT_SELECTED,
    SOURCE_DIGEST_ANNOTATION,
    Action,
    PlatformFilter,
    ReferrersPlanned,
    TagFacts,
    TagPlan,
    Verb,
    decide,
    failed,
    follows_referrers,
    maybe_rewritten,
    planned,
    recorded_source,
)
from regsync.daemon.oci.types import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
)
from regsync.daemon.values.platform import Platform

SRC = "sha256:" + "a" * 64
DST = "sha256:" + "b" * 64
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
ONLY_AMD64 = PlatformFilter(architectures=("amd64",))
EVERYTHING = PlatformFilter()


def _d(digest: str, media_type: str = OCI_MANIFEST) -> Descriptor:
    return Descriptor(media_type, digest, 100)


IMAGE = _d(SRC)


def _facts(
    source: Descriptor = IMAGE,
    target: Descriptor | None = None,
    recorded: str | None = None,
    remembered: Platform | None = None,
) -> TagFacts:
    return TagFacts(source, target, recorded, remembered)


# -- decide: unchanged ---------------------------------------------------------------------


@pytest.mark.parametrize("platforms", [EVERYTHING, ONLY_AMD64])
@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST])
def test_the_same_digest_on_both_sides_is_unchanged(
    platforms: PlatformFilter, media_type: str
) -> None:
    facts = _facts(_d(SRC, media_type), _d(SRC, media_type))
    assert decide(facts, platforms) is Action.SKIP_UNCHANGED


def test_unchanged_wins_over_a_remembered_unwanted_platform() -> None:
    """A target that already has the image keeps it, even if the filter now rejects it."""
    facts = _facts(_d(SRC), _d(SRC), remembered=ARM64)
    assert decide(facts, ONLY_AMD64) is Action.SKIP_UNCHANGED


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_our_rewrite_of_the_source_index_is_unchanged(media_type: str) -> None:
    facts = _facts(_d(SRC, OCI_INDEX), _d(DST, media_type), recorded=SRC)
    assert decide(facts, ONLY_AMD64) is Action.SKIP_UNCHANGED


def test_a_rewrite_of_another_source_index_is_changed() -> None:
    other = "sha256:" + "c" * 64
    facts = _facts(_d(SRC, OCI_INDEX), _d(DST, OCI_INDEX), recorded=other)
    assert decide(facts, ONLY_AMD64) is Action.COPY_CHANGED


def test_a_target_index_without_a_record_is_changed() -> None:
    facts = _facts(_d(SRC, OCI_INDEX), _d(DST, OCI_INDEX), recorded=None)
    assert decide(facts, ONLY_AMD64) is Action.COPY_CHANGED


def test_a_record_counts_only_under_a_platform_filter() -> None:
    """Without a filter the target must be the source's own bytes: a record is not enough."""
    facts = _facts(_d(SRC, OCI_INDEX), _d(DST, OCI_INDEX), recorded=SRC)
    assert decide(facts, EVERYTHING) is Action.COPY_CHANGED


def test_a_record_counts_only_on_an_index() -> None:
    facts = _facts(_d(SRC, OCI_INDEX), _d(DST, OCI_MANIFEST), recorded=SRC)
    assert decide(facts, ONLY_AMD64) is Action.COPY_CHANGED


# -- decide: platform learnt on an earlier run ---------------------------------------------


@pytest.mark.parametrize("target", [None, _d(DST)])
def test_a_remembered_unwanted_platform_is_skipped_without_a_get(
    target: Descriptor | None,
) -> None:
    facts = _facts(_d(SRC, DOCKER_MANIFEST), target, remembered=ARM64)
    assert decide(facts, ONLY_AMD64) is Action.SKIP_PLATFORM


def test_a_remembered_wanted_platform_is_copied() -> None:
    assert decide(_facts(remembered=AMD64), ONLY_AMD64) is Action.COPY_NEW


def test_a_remembered_platform_does_not_matter_without_a_filter() -> None:
    assert decide(_facts(remembered=ARM64), EVERYTHING) is Action.COPY_NEW


def test_a_remembered_platform_does_not_matter_for_an_index() -> None:
    """An index is filtered entry by entry after its GET, never skipped whole from memory."""
    facts = _facts(_d(SRC, OCI_INDEX), remembered=ARM64)
    assert decide(facts, ONLY_AMD64) is Action.COPY_NEW


def test_an_image_of_an_unknown_platform_is_copied() -> None:
    assert decide(_facts(remembered=None), ONLY_AMD64) is Action.COPY_NEW


# -- decide: new or changed ----------------------------------------------------------------


def test_no_target_tag_is_new() -> None:
    assert decide(_facts(target=None), EVERYTHING) is Action.COPY_NEW


def test_a_target_tag_pointing_elsewhere_is_changed() -> None:
    assert decide(_facts(target=_d(DST)), EVERYTHING) is Action.COPY_CHANGED


# -- the facts the engine gathers ----------------------------------------------------------


def test_the_target_index_is_read_only_when_it_may_be_our_rewrite() -> None:
    index = _d(DST, OCI_INDEX)
    assert maybe_rewritten(_d(SRC, OCI_INDEX), index, ONLY_AMD64) is index
    assert maybe_rewritten(_d(SRC, OCI_INDEX), _d(DST, DOCKER_LIST), ONLY_AMD64) is not None
    assert maybe_rewritten(_d(SRC, OCI_INDEX), None, ONLY_AMD64) is None
    assert maybe_rewritten(_d(SRC, OCI_INDEX), _d(SRC, OCI_INDEX), ONLY_AMD64) is None
    assert maybe_rewritten(_d(SRC, OCI_INDEX), index, EVERYTHING) is None
    assert maybe_rewritten(_d(SRC, OCI_INDEX), _d(DST, OCI_MANIFEST), ONLY_AMD64) is None


def _index(annotations: object) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
                       "annotations": annotations}).encode()


def test_the_recorded_source_of_our_rewrite() -> None:
    assert recorded_source(_index({SOURCE_DIGEST_ANNOTATION: SRC, "other": "x"})) == SRC


@pytest.mark.parametrize("raw", [
    _index({"other": SRC}),
    _index({SOURCE_DIGEST_ANNOTATION: 7}),
    _index(["not", "a", "map"]),
    b'["an index is an object"]',
    b"{not json",
    b"",
])
def test_no_recorded_source_in_anything_else(raw: bytes) -> None:
    assert recorded_source(raw) is None


def test_an_image_the_rule_does_not_copy_has_no_referrers_to_count() -> None:
    assert not follows_referrers(Action.SKIP_PLATFORM)
    assert all(follows_referrers(a) for a in Action if a is not Action.SKIP_PLATFORM)


def test_a_filter_is_falsy_when_it_selects_everything() -> None:
    assert not EVERYTHING
    assert PlatformFilter(platforms=(ARM64,)) and ONLY_AMD64
    assert PlatformFilter(platforms=(ARM64,)).wants(ARM64)
    assert not PlatformFilter(platforms=(ARM64,)).wants(AMD64)


# -- what a dry run shows ------------------------------------------------------------------


def test_the_lines_of_a_dry_run() -> None:
    new, changed = _facts(), _facts(target=_d(DST))
    assert planned("1", Action.COPY_NEW, new) == TagPlan("1", Verb.COPY, "new tag", SRC)
    assert planned("1", Action.COPY_CHANGED, changed) == TagPlan(
        "1", Verb.COPY, f"changed (target has {DST})", SRC, DST)
    assert planned("1", Action.SKIP_UNCHANGED, _facts(target=_d(SRC))) == TagPlan(
        "1", Verb.SKIP, "unchanged", SRC, SRC)
    assert planned("1", Action.SKIP_PLATFORM, changed) == TagPlan(
        "1", Verb.SKIP, NOT_SELECTED, SRC)


def test_referrers_to_copy_make_an_unchanged_tag_a_copy() -> None:
    unchanged = _facts(target=_d(SRC))
    assert planned("1", Action.SKIP_UNCHANGED, unchanged, ReferrersPlanned(2)) == TagPlan(
        "1", Verb.COPY, "unchanged; referrers: 2 to copy", SRC, SRC, referrers=2)
    assert planned("1", Action.COPY_NEW, _facts(), ReferrersPlanned(1)).reason == (
        "new tag; referrers: 1 to copy")
    assert planned("1", Action.COPY_CHANGED, _facts(target=_d(DST)), ReferrersPlanned(3)) == (
        TagPlan("1", Verb.COPY, f"changed (target has {DST}); referrers: 3 to copy", SRC, DST,
                referrers=3))


def test_referrers_a_rewritten_index_leaves_behind_are_said_but_copy_nothing() -> None:
    unchanged = _facts(target=_d(SRC))
    assert planned("1", Action.SKIP_UNCHANGED, unchanged, ReferrersPlanned(0, 1)) == TagPlan(
        "1", Verb.SKIP, "unchanged; 1 referrer tags of the index not copied: the platform "
        "filter rewrites it", SRC, SRC)


def test_a_line_that_failed() -> None:
    assert failed("1", "not-found: gone") == TagPlan("1", Verb.FAIL, "not-found: gone")


def test_the_verbs_are_the_wire_words() -> None:
    """`PlannedTag.action`, regsyncctl's counts and the console print these strings."""
    assert [str(v) for v in Verb] == ["copy", "skip", "fail"]
    assert f"{Verb.SKIP:<5}|" == "skip |"
