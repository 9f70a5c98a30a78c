"""What a prune deletes, decided from names and digests (engine/prune.py): pure and fast."""

from __future__ import annotations

import pytest
from regsync.daemon.engine.prune import NOT_SELECTED, SUBJECT_GONE, Deletion, decide, subject_of
from regsync.daemon.values.prunelimit import DEFAULT_LIMIT, PruneLimit, parse_prune_limit

A, B, C, D = (f"sha256:{c * 64}" for c in "abcd")
CHILD, CHILD2 = f"sha256:{'e' * 64}", f"sha256:{'f' * 64}"


def sig(digest: str, suffix: str = ".sig") -> str:
    return "sha256-" + digest.removeprefix("sha256:") + suffix


def test_tags_the_selection_lacks_are_deleted_plain_tags_first() -> None:
    target = {"1.0": A, sig(B): C, "old": B, "mine": D}
    decision = decide(target, kept={"1.0"}, children={})
    assert decision.deletions == (
        Deletion("old", B, NOT_SELECTED),
        Deletion("mine", D, NOT_SELECTED),
        Deletion(sig(B), C, SUBJECT_GONE),
    )
    assert decision.blocked == {} and decision.total == 4


def test_nothing_to_delete_when_the_target_holds_the_selection() -> None:
    decision = decide({"1.0": A, "1.1": B}, kept={"1.0", "1.1", "2.0"}, children={})
    assert decision.deletions == () and decision.within_limit


def test_referrer_tags_stay_with_kept_subjects_children_and_referrers_of_referrers() -> None:
    target = {
        "1.0": A,  # an index listing CHILD, itself an index listing CHILD2
        sig(A): B,  # the index's signature
        sig(CHILD2, ".att"): C,  # an attestation of a grandchild
        sig(C): D,  # a signature of that attestation
        sig(f"sha256:{'9' * 64}"): f"sha256:{'8' * 64}",  # a subject that is nowhere
    }
    decision = decide(target, kept={"1.0"}, children={A: (CHILD,), CHILD: (CHILD2,)})
    assert [d.tag for d in decision.deletions] == [sig(f"sha256:{'9' * 64}")]
    assert decision.deletions[0].reason == SUBJECT_GONE


def test_a_digest_a_kept_tag_shares_is_blocked() -> None:
    """Deleting by digest would take the kept tag with it: reported, never grouped."""
    target = {"1.0": A, "stable": A, "old-a": B, "old-b": B, "child-tag": CHILD}
    decision = decide(target, kept={"1.0"}, children={A: (CHILD,)})
    assert [d.tag for d in decision.deletions] == ["stable", "old-a", "old-b", "child-tag"]
    assert "like the kept tag '1.0'" in decision.blocked["stable"]
    assert "part of a kept image" in decision.blocked["child-tag"]
    assert decision.by_digest() == {B: ("old-a", "old-b")}
    assert decision.siblings == {"stable": "1.0"}  # checked after a delete by name


def test_a_kept_referrer_protects_its_digest() -> None:
    target = {"1.0": A, sig(A): B, "alias": B}
    decision = decide(target, kept={"1.0"}, children={})
    assert set(decision.blocked) == {"alias"}


@pytest.mark.parametrize(("limit", "deletions", "total", "allowed"), [
    (DEFAULT_LIMIT, 2, 4, True),  # 50% of 4 is 2: not more than the limit
    (DEFAULT_LIMIT, 3, 4, False),
    (DEFAULT_LIMIT, 1, 3, True),
    (DEFAULT_LIMIT, 2, 3, False),  # 66%
    (PruneLimit(2), 2, 100, True),
    (PruneLimit(2), 3, 100, False),
    (PruneLimit(0), 1, 100, False),
    (PruneLimit(100, percent=True), 9, 9, True),
    (PruneLimit(0, percent=True), 0, 9, True),
])
def test_the_limit(limit: PruneLimit, deletions: int, total: int, allowed: bool) -> None:
    assert limit.allows(deletions, total) is allowed


def test_over_the_limit_is_known_before_anything_is_deleted() -> None:
    target = {"a": A, "b": B, "c": C, "keep": D}
    decision = decide(target, kept={"keep"}, children={}, limit=PruneLimit(50, percent=True))
    assert not decision.within_limit
    assert "delete 3 of 4 target tags, over prune_max 50%" in decision.limit_message()
    assert "--force-prune" in decision.limit_message()


@pytest.mark.parametrize(("text", "limit"), [
    ("50%", PruneLimit(50, True)), (" 7 ", PruneLimit(7)), (10, PruneLimit(10)),
    ("0", PruneLimit(0)), ("100%", PruneLimit(100, True)),
])
def test_parse_prune_limit(text: object, limit: PruneLimit) -> None:
    assert parse_prune_limit(text) == limit
    assert parse_prune_limit(str(limit)) == limit


@pytest.mark.parametrize("text", ["101%", "-1", "1.5", "half", "", "%", True, None, 2.0, "5 %"])
def test_parse_prune_limit_refuses(text: object) -> None:
    with pytest.raises(ValueError, match="expected a number or a percentage|at most 100%"):
        parse_prune_limit(text)


def test_subject_of() -> None:
    assert subject_of(sig(A)) == A
    assert subject_of(sig(A, ".sbom")) == A
    assert subject_of("sha256-" + "a" * 64) == A
    assert subject_of("1.0") is None
    assert subject_of("sha256-" + "a" * 63) is None
