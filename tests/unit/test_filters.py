"""Tag filters: each alone, combined, and the seed config's example over nginx's tags."""

from __future__ import annotations

import time

import pytest
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.engine import filters
from regsync.daemon.engine.filters import TagSelection, rule_tags, select_tags
from regsync.daemon.settings import Endpoint, SyncRule, TagFilter
from regsync.daemon.values.tagregex import TagRegexError
from regsync.daemon.values.versions import VersionRange

# A slice of docker.io/library/nginx's tags, in the (non-version) order a registry lists them.
NGINX = [
    "1", "1-alpine", "1-perl", "1.19", "1.19.10", "1.19-alpine", "1.20", "1.20.0", "1.20.1",
    "1.20.2", "1.20-alpine", "1.21", "1.21.6", "1.21.6-alpine", "1.22", "1.22.1", "1.22-perl",
    "1.23", "1.23.4", "1.23.4-alpine", "1.24", "1.24.0", "1.24.0-alpine-slim", "1.24-bookworm",
    "1.25", "1.25.3", "1.25.3-alpine", "1.25.3-alpine3.18", "1.25-perl", "1.25.4", "1.26.0",
    "1.27.2-alpine", "1.3", "1.200", "alpine", "alpine-slim", "latest", "mainline", "perl",
    "stable", "stable-alpine",
]  # fmt: skip


def _reasons(selection: TagSelection) -> dict[str, str]:
    return dict(selection.dropped)


def test_no_filters_keeps_everything_in_version_order() -> None:
    selection = select_tags(["1.10", "latest", "1.9", "v1.2"])
    assert selection == TagSelection(("latest", "v1.2", "1.9", "1.10"), ())


def test_seed_example_over_nginx() -> None:
    selection = select_tags(NGINX, include=[r"^1\.2[0-9]\.*"], exclude=[".*-alpine"], latest=10)
    # Suffixed tags sort just below their release ("1.24-bookworm" < "1.24"); equal releases
    # tie-break by text ("1.24" < "1.24.0"); "1.200" matches the include and is the highest.
    assert selection.kept == (
        "1.23.4", "1.24-bookworm", "1.24", "1.24.0", "1.25-perl", "1.25", "1.25.3", "1.25.4",
        "1.26.0", "1.200",
    )  # fmt: skip
    reasons = _reasons(selection)
    assert reasons["1.19"] == "no include pattern matched"
    assert reasons["latest"] == "no include pattern matched"
    assert reasons["1.3"] == "no include pattern matched"
    assert reasons["1.25.3-alpine"] == "excluded by '.*-alpine'"
    assert reasons["1.25.3-alpine3.18"] == "excluded by '.*-alpine'"
    assert reasons["1.24.0-alpine-slim"] == "excluded by '.*-alpine'"
    assert reasons["1.20.1"] == "not in the newest 10"
    assert reasons["1.23"] == "not in the newest 10"
    assert sorted([*selection.kept, *reasons]) == sorted(NGINX)


def test_dropped_in_version_order() -> None:
    selection = select_tags(["2.0", "latest", "1.0", "alpine"], include=["^9"])
    assert [tag for tag, _ in selection.dropped] == ["alpine", "latest", "1.0", "2.0"]


def test_include_any_pattern_searches_anywhere() -> None:
    selection = select_tags(NGINX, include=["perl", "^stable$"])
    assert selection.kept == ("perl", "stable", "1-perl", "1.22-perl", "1.25-perl")


def test_exclude_any_pattern() -> None:
    selection = select_tags(["1.0", "1.0-alpine", "1.0-perl", "latest"], exclude=["alpine", "^l"])
    assert selection.kept == ("1.0-perl", "1.0")
    assert _reasons(selection) == {
        "1.0-alpine": "excluded by 'alpine'",
        "latest": "excluded by '^l'",
    }


def test_include_checked_before_exclude() -> None:
    selection = select_tags(["x-alpine"], include=["^1"], exclude=["alpine"])
    assert selection.dropped == (("x-alpine", "no include pattern matched"),)


def test_semver_alone() -> None:
    selection = select_tags(NGINX, semver=">=1.25 <1.27")
    assert selection.kept == ("1.25", "1.25.3", "1.25.4", "1.26.0")
    reasons = _reasons(selection)
    assert reasons["latest"] == "not a version (semver filter)"
    assert reasons["1.24"] == "outside the version range '>=1.25 <1.27'"
    assert reasons["1.25-perl"] == "outside the version range '>=1.25 <1.27'"  # prerelease


def test_latest_alone_non_versions_go_first() -> None:
    selection = select_tags(["latest", "1.0", "stable", "2.0"], latest=3)
    assert selection.kept == ("stable", "1.0", "2.0")
    assert selection.dropped == (("latest", "not in the newest 3"),)


def test_latest_more_than_available_keeps_all() -> None:
    assert select_tags(["1", "2"], latest=5).kept == ("1", "2")


def test_latest_zero_keeps_nothing() -> None:
    selection = select_tags(["1", "2"], latest=0)
    assert selection.kept == ()
    assert len(selection.dropped) == 2


def test_all_filters_combined() -> None:
    selection = select_tags(NGINX, include=[r"^1\."], exclude=["-"], semver="^1.20", latest=3)
    assert selection.kept == ("1.25.4", "1.26.0", "1.200")
    reasons = _reasons(selection)
    assert reasons["1.3"] == "outside the version range '^1.20'"
    assert reasons["1.25.3"] == "not in the newest 3"
    assert reasons["1.25-perl"] == "excluded by '-'"


def test_duplicates_dropped_once() -> None:
    selection = select_tags(["1.0", "1.0", "2.0"])
    assert selection.kept == ("1.0", "2.0")
    assert selection.dropped == (("1.0", "duplicate tag in the listing"),)


def test_bad_regex_is_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"invalid tag regex '\[1-'"):
        select_tags(["1.0"], exclude=["ok", "[1-"])


def test_bad_range_is_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid version range '>=x'"):
        select_tags(["1.0"], semver=">=x")


def test_negative_latest_is_config_error() -> None:
    with pytest.raises(ConfigError, match="latest"):
        select_tags(["1.0"], latest=-1)


def test_accepts_any_iterable_once() -> None:
    assert select_tags(iter(["2", "1"]), latest=1).kept == ("2",)


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    """`^(a+)+$` backtracks ~2^n steps in Python's `re` (hours for this tag); RE2 is linear."""
    evil = "a" * 100 + "!"
    start = time.monotonic()
    selection = select_tags([evil, "a" * 120], include=["^(a+)+$"])
    assert time.monotonic() - start < 1.0
    assert selection.kept == ("a" * 120,)


@pytest.mark.parametrize("pattern", [r"(a)\1", "^1(?=\\.)", "(?<!rc)$", r"\Z"])
def test_patterns_re2_cannot_run_are_refused_saying_so(pattern: str) -> None:
    with pytest.raises(ConfigError, match="RE2 syntax"):
        select_tags(["1.0"], include=[pattern])


def test_digit_classes_are_ascii_as_in_go() -> None:
    assert select_tags(["\u0661\u0662", "12"], include=[r"^\d+$"]).kept == ("12",)


def test_rule_filters_are_parsed_in_the_settings_and_never_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule's TagFilter holds its compiled regexes and range (issue 11): the engine runs those,
    so the parsers are not called when a run filters tags, and a bad filter cannot be built."""
    tags = TagFilter(include=(r"^1\.",), exclude=("alpine",), semver=">=1.20 <1.22", latest=2)
    assert [p.pattern for p in tags.includes] == [r"^1\."]
    assert tags.version_range == VersionRange.parse(">=1.20 <1.22")
    rule = SyncRule("r", Endpoint("a", "x"), Endpoint("b", "y"), tags=tags, referrers=False)

    def parse_again(*args: object) -> object:
        raise AssertionError("a filter was parsed again at run time")

    monkeypatch.setattr(filters, "compile_tag_regex", parse_again)
    monkeypatch.setattr(filters, "_range", parse_again)
    assert rule_tags(rule, NGINX).kept == ("1.21", "1.21.6")
    with pytest.raises(TagRegexError):
        TagFilter(include=("(",))
    with pytest.raises(ValueError, match="invalid version range"):
        TagFilter(semver=">=one")
