"""Version tags: parsing, the total order over tags, and ranges."""

from __future__ import annotations

import pytest
from regsync.daemon.values.versions import Version, VersionRange, parse_version, version_key


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("1", Version((1,))),
        ("1.25", Version((1, 25))),
        ("v2.0.1", Version((2, 0, 1))),
        ("1.2.3.4", Version((1, 2, 3, 4))),
        ("2.0.0-rc.1", Version((2, 0, 0), ("rc", "1"))),
        ("1.25-alpine", Version((1, 25), ("alpine",))),
        ("1.25.3-alpine3.19", Version((1, 25, 3), ("alpine3", "19"))),
        ("1.0.0+build.5", Version((1, 0, 0), (), "build.5")),
        ("1.0.0-beta+exp.sha.5114f85", Version((1, 0, 0), ("beta",), "exp.sha.5114f85")),
        ("2024.01.05", Version((2024, 1, 5))),
    ],
)
def test_parse_version(tag: str, expected: Version) -> None:
    assert parse_version(tag) == expected


@pytest.mark.parametrize(
    "tag",
    [
        "latest",
        "alpine",
        "stable-perl",
        "",
        "v",
        "1.2.3.4.5",
        "1..2",
        ".1",
        "1.",
        "V1.2",
        "1.2-",
        "1.2+",
        "1.2-a..b",
        "mainline-1.25",
        "1.2 ",
        "sha256-abc.sig",
    ],
)
def test_not_a_version(tag: str) -> None:
    assert parse_version(tag) is None


def test_str_round_trips_without_v() -> None:
    assert str(parse_version("v1.2.3-rc.1+b7")) == "1.2.3-rc.1+b7"


def _sorted(tags: list[str]) -> list[str]:
    return sorted(tags, key=version_key)


def test_numeric_not_lexical() -> None:
    assert _sorted(["1.10", "1.2", "1.9"]) == ["1.2", "1.9", "1.10"]


def test_non_versions_first_lexically() -> None:
    assert _sorted(["1.0", "stable", "alpine", "0.1", "latest"]) == [
        "alpine",
        "latest",
        "stable",
        "0.1",
        "1.0",
    ]


def test_prerelease_below_release_and_semver_identifier_rules() -> None:
    # the semver spec's own example chain
    chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    assert _sorted(list(reversed(chain))) == chain


def test_alpine_variant_sorts_just_below_its_release() -> None:
    assert _sorted(["1.25.1", "1.25", "1.25-alpine", "1.24.9"]) == [
        "1.24.9",
        "1.25-alpine",
        "1.25",
        "1.25.1",
    ]


def test_four_parts_and_padding() -> None:
    assert _sorted(["1.2.3.4", "1.2.4", "1.2.3"]) == ["1.2.3", "1.2.3.4", "1.2.4"]


def test_equal_precedence_ties_broken_by_text() -> None:
    tags = ["v1.2.0", "1.2", "1.2.0+b2", "1.2.0+b1", "1.2.0", "1.2.0.0"]
    assert _sorted(tags) == ["1.2", "1.2.0", "1.2.0+b1", "1.2.0+b2", "1.2.0.0", "v1.2.0"]
    v1, v2 = parse_version("1.2.0+b1"), parse_version("1.2.0+b2")
    assert v1 is not None and v2 is not None
    assert v1.precedence == v2.precedence  # build metadata ignored for precedence
    assert version_key("1.2.0+b1") != version_key("1.2.0+b2")


def test_v_prefix_same_precedence() -> None:
    a, b = parse_version("v1.3"), parse_version("1.3")
    assert a is not None and b is not None and a.precedence == b.precedence
    assert _sorted(["v1.3", "1.2", "v1.1"]) == ["v1.1", "1.2", "v1.3"]


def _matches(range_text: str, tag: str) -> bool:
    version = parse_version(tag)
    assert version is not None, tag
    return VersionRange.parse(range_text).contains(version)


@pytest.mark.parametrize(
    ("range_text", "inside", "outside"),
    [
        (">=1.20 <2", ["1.20", "1.20.0", "1.25.3", "1.99.99.9"], ["1.19.9", "2", "2.0.1", "0.9"]),
        (">= 1.20  < 2", ["1.21"], ["2.0"]),  # spaces after operators
        ("^1.2", ["1.2", "1.2.9", "1.9"], ["1.1.9", "2.0", "0.2"]),
        ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
        ("^0", ["0.0.1", "0.9"], ["1.0"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
        ("~1.2", ["1.2.0", "1.2.7"], ["1.3", "1.1"]),
        ("~1", ["1.0", "1.9"], ["2.0", "0.9"]),
        ("=1.0", ["1.0", "1.0.0", "1.0.7", "v1.0.7.1"], ["1.1", "0.9"]),
        ("1.0", ["1.0.3"], ["1.1.0"]),
        ("=1.2.3.4", ["1.2.3.4"], ["1.2.3.5", "1.2.3"]),
        (">1.2", ["1.3", "2"], ["1.2", "1.2.9"]),
        (">1.2.3.4", ["1.2.3.5"], ["1.2.3.4"]),
        ("<=1.2", ["1.2.9", "0.1"], ["1.3"]),
        ("<1.2", ["1.1.9"], ["1.2", "1.2.1"]),
        ("<1.2.0.1", ["1.2"], ["1.2.0.1"]),
        ("^1 || ^3", ["1.5", "3.1"], ["2.0", "4.0"]),
    ],
)
def test_ranges(range_text: str, inside: list[str], outside: list[str]) -> None:
    for tag in inside:
        assert _matches(range_text, tag), (range_text, tag)
    for tag in outside:
        assert not _matches(range_text, tag), (range_text, tag)


def test_prerelease_only_when_named_for_same_release() -> None:
    assert not _matches(">=1.0", "2.0-rc1")
    assert not _matches(">=1.20", "1.25-alpine")
    assert _matches(">=2.0-rc1 <2.1", "2.0-rc2")
    assert not _matches(">=2.0-rc1 <2.1", "2.0.1-rc1")  # other release: not named
    assert not _matches(">=2.0-rc1 <2.1", "2.0-rc0")  # named, but below the bound
    assert _matches("=1.25-alpine", "1.25.0-alpine")
    assert _matches(">=1.0 || =1.25-alpine", "1.25-alpine")
    assert not _matches(">=1.0 || =1.25-alpine", "1.25-perl")


def test_range_upper_bound_excludes_prereleases_of_the_bound() -> None:
    assert not _matches(">=2.0-rc1 <2", "2.0-rc2")  # "<2" means below every 2.0 prerelease


def test_range_str() -> None:
    assert str(VersionRange.parse(">=1 <2")) == ">=1 <2"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        ">=1 ||",
        "|| 1",
        "latest",
        ">=x",
        "=>1",
        ">=1.2.3.4.5",
        "1.0+b1",
        ">>1",
        "^",
        "1 - 2",
    ],
)
def test_bad_range_raises_value_error_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="invalid version range"):
        VersionRange.parse(text)
