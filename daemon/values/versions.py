"""Version tags: parse them, order every tag totally, and match semver-like ranges.

A version tag is an optional "v", one to four dot-separated numbers, an optional "-prerelease"
and an optional "+build" ("1.25", "v2.0.1", "1.2.3.4", "2.0.0-rc.1"). Anything else ("latest",
"alpine", "stable-perl") is not a version.

Decision on suffixes: following semver, "1.25-alpine" parses as release 1.25 with prerelease
"alpine". It therefore sorts just below "1.25", and a range only matches it when the range names
a prerelease of the same release (see `VersionRange`). Users who want such variants select them
with include/exclude regexes instead.

Ordering follows semver precedence over releases padded to four numbers ("1.2" == "1.2.0" ==
"1.2.0.0"), prereleases below their release, build metadata ignored; ties are broken by the tag
text so the order over tags is total and deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(
    r"v?(?P<release>[0-9]+(?:\.[0-9]+){0,3})"
    r"(?:-(?P<pre>[0-9A-Za-z_-]+(?:\.[0-9A-Za-z_-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z_-]+(?:\.[0-9A-Za-z_-]+)*))?"
)
_PARTS = 4

#: one prerelease identifier: numeric ones (0, n, "") sort below alphanumeric ones (1, 0, s)
_IdKey = tuple[int, int, str]
#: (1, ()) for a release; (0, identifiers) for a prerelease, so a release sorts above it
_PreKey = tuple[int, tuple[_IdKey, ...]]
Precedence = tuple[tuple[int, ...], _PreKey]
TagKey = tuple[int, tuple[int, ...], _PreKey, str]


@dataclass(frozen=True, order=False)
class Version:
    """A parsed version tag. Compare with `precedence` (or `version_key` for tags), not with <."""

    release: tuple[int, ...]
    prerelease: tuple[str, ...] = ()
    build: str = ""

    @property
    def precedence(self) -> Precedence:
        """Semver precedence: the release padded to four numbers, then the prerelease."""
        return (_pad(self.release), _prerelease_key(self.prerelease))

    def __str__(self) -> str:
        text = ".".join(map(str, self.release))
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text


def parse_version(tag: str) -> Version | None:
    """The version a tag names, or None when the tag is not a version (see module docstring)."""
    match = _VERSION.fullmatch(tag)
    if match is None:
        return None
    release = tuple(int(part) for part in match["release"].split("."))
    pre = tuple(match["pre"].split(".")) if match["pre"] else ()
    return Version(release, pre, match["build"] or "")


def version_key(tag: str) -> TagKey:
    """Sort key for any tag: non-versions first (by text), then versions by precedence, then text."""
    version = parse_version(tag)
    if version is None:
        return (0, (), (0, ()), tag)
    release, pre = version.precedence
    return (1, release, pre, tag)


def _pad(release: tuple[int, ...]) -> tuple[int, ...]:
    return release + (0,) * (_PARTS - len(release))


def _prerelease_key(pre: tuple[str, ...]) -> _PreKey:
    if not pre:
        return (1, ())
    return (0, tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in pre))


# Ranges -------------------------------------------------------------------------------------
#
# A range is alternatives separated by "||"; each alternative is comparators separated by spaces,
# all of which must hold. A comparator is an optional operator (=, >, >=, <, <=, ^, ~) and a
# version with 1-4 numbers. Numbers left out are wildcards, as in npm: "=1.2" is 1.2.x, ">1.2"
# is >=1.3, "<=1.2" is <1.3, "^1.2.3" is >=1.2.3 <2, "^0.2" is >=0.2 <0.3, "~1.2.3" is
# >=1.2.3 <1.3. A comparator with a prerelease is exact.
#
# Prereleases (npm rule): a prerelease version only matches an alternative that has a comparator
# naming a prerelease of the same release, so ">=1.0" never picks "2.0-rc1" or "1.25-alpine",
# but ">=2.0-rc1 <2.1" does pick "2.0-rc2".

_COMPARATOR = re.compile(r"(?P<op>>=|<=|>|<|=|\^|~)?(?P<version>.+)")
_OP_SPACE = re.compile(r"(>=|<=|>|<|=|\^|~)\s+")
#: the lowest key of a release: below all its prereleases (npm's "-0")
_LOWEST: _PreKey = (0, ())


@dataclass(frozen=True, slots=True)
class _Bound:
    op: str  # one of ">=", ">", "<", "<="
    key: Precedence

    def holds(self, key: Precedence) -> bool:
        if self.op == ">=":
            return key >= self.key
        if self.op == ">":
            return key > self.key
        if self.op == "<":
            return key < self.key
        return key <= self.key


@dataclass(frozen=True, slots=True)
class _Alternative:
    bounds: tuple[_Bound, ...]
    #: padded releases for which this alternative admits prereleases
    prerelease_releases: frozenset[tuple[int, ...]]

    def contains(self, v: Version) -> bool:
        release, pre = v.precedence
        if v.prerelease and release not in self.prerelease_releases:
            return False
        return all(b.holds((release, pre)) for b in self.bounds)


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A semver-like range such as ">=1.20 <2", "^1.2 || ~0.9.3" (syntax in the comment above)."""

    text: str
    alternatives: tuple[_Alternative, ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Parse a range. Raises ValueError naming the part that is wrong."""
        alternatives = []
        for part in text.split("||"):
            words = _OP_SPACE.sub(r"\1", part).split()
            if not words:
                raise ValueError(f"invalid version range {text!r}: empty alternative")
            alternatives.append(_parse_alternative(text, words))
        return cls(text, tuple(alternatives))

    def contains(self, v: Version) -> bool:
        """Whether `v` satisfies any alternative (prerelease rule in the comment above)."""
        return any(alt.contains(v) for alt in self.alternatives)

    def __str__(self) -> str:
        return self.text


def _parse_alternative(text: str, words: list[str]) -> _Alternative:
    bounds: list[_Bound] = []
    pre_releases: set[tuple[int, ...]] = set()
    for word in words:
        match = _COMPARATOR.fullmatch(word)
        version = parse_version(match["version"]) if match else None
        if match is None or version is None or version.build:
            raise ValueError(
                f"invalid version range {text!r}: {word!r} is not an operator"
                " (=, >, >=, <, <=, ^, ~) followed by a version like 1.2.3"
            )
        bounds.extend(_bounds(match["op"] or "=", version))
        if version.prerelease:
            pre_releases.add(_pad(version.release))
    return _Alternative(tuple(bounds), frozenset(pre_releases))


def _bounds(op: str, v: Version) -> list[_Bound]:
    """Translate one comparator into plain bounds on precedence keys."""
    key = v.precedence
    exact = bool(v.prerelease) or len(v.release) == _PARTS
    last = len(v.release) - 1
    if op in ("^", "~"):
        if op == "^":
            nonzero = [i for i, n in enumerate(v.release) if n]
            at = nonzero[0] if nonzero else last
        else:
            at = min(last, 1)
        return [_Bound(">=", key), _Bound("<", _bump(v.release, at))]
    if exact:
        return [_Bound(op, key)] if op != "=" else [_Bound(">=", key), _Bound("<=", key)]
    upper = _bump(v.release, last)
    if op == "=":
        return [_Bound(">=", key), _Bound("<", upper)]
    if op == ">":
        return [_Bound(">=", upper)]
    if op == "<=":
        return [_Bound("<", upper)]
    return [_Bound(op, (key[0], _LOWEST) if op == "<" else key)]


def _bump(release: tuple[int, ...], at: int) -> Precedence:
    """The lowest key above every version starting with release[: at + 1]."""
    bumped = release[:at] + (release[at] + 1,)
    return (_pad(bumped), _LOWEST)
