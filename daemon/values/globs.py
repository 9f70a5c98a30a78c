"""Repository globs: one rule over many repositories of a catalog. Pure: no I/O.

    *     any characters within one path segment (`library/*`, `*-dev`, `*/frontend`)
    **    a whole segment: one or more segments (`team-a/**` matches `team-a/web/api`)

The target of a glob rule has the same wildcards in the same order, each replaced by what it
matched: `team-a/**` -> `dr/team-a/**` maps `team-a/web/api` to `dr/team-a/web/api`. A glob is
translated to RE2 (linear time whatever the pattern; Python's `re` would backtrack
polynomially on `**/**/**`), anchored, one capture group per wildcard.

Catalog names are the source registry's data: a name that is not a repository by the
distribution grammar never matches, and neither does one whose mapped target would not be one.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, cast

import re2

from .names import is_repository

DEEP = "**"
SHALLOW = "*"


class GlobError(ValueError):
    """The pattern is not a repository glob; the message says why (the caller names the field)."""


class _Compiled(Protocol):
    def fullmatch(self, text: str) -> _Match | None: ...


class _Match(Protocol):
    def groups(self) -> tuple[str, ...]: ...


def has_wildcards(pattern: str) -> bool:
    return SHALLOW in pattern


def wildcards(pattern: str) -> tuple[str, ...]:
    """The pattern's wildcards in order, each `*` or `**` (what a target must repeat).

    Raises:
        GlobError: `**` not as a whole path segment, or three stars in a row.
    """
    found: list[str] = []
    for segment in pattern.split("/"):
        if "***" in segment:
            raise GlobError("'***' is not a wildcard (use * within a segment, ** for segments)")
        if DEEP in segment:
            if segment != DEEP:
                raise GlobError("'**' must be a whole path segment (such as team-a/**)")
            found.append(DEEP)
        else:
            found.extend(SHALLOW * segment.count(SHALLOW))
    return tuple(found)


def check_glob(pattern: str) -> tuple[str, ...]:
    """The wildcards of `pattern`, once it is known to be a glob over valid repository names.

    Raises:
        GlobError: a misplaced wildcard, or literal parts no repository name can have.
    """
    found = wildcards(pattern)
    if not is_repository(pattern.replace(SHALLOW, "x")):
        raise GlobError("expected lowercase path components around the wildcards, such as"
                        " library/* or team-a/**")
    return found


def check_mapping(source: str, target: str) -> str | None:
    """Why `target` cannot receive what `source` matches (None when it can)."""
    theirs, ours = wildcards(source), wildcards(target)
    if theirs == ours:
        return None
    if not theirs:
        return "has wildcards but source.repository has none (one repository maps to one)"
    shown = " ".join(theirs)
    return (f"must have the same wildcards in the same order as source.repository ({shown}),"
            f" each replaced by what it matched; got {' '.join(ours) or 'none'}")


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> _Compiled:
    parts: list[str] = []
    for position, segment in enumerate(pattern.split("/")):
        if position:
            parts.append("/")
        if segment == DEEP:
            parts.append("([^/]+(?:/[^/]+)*)")
            continue
        pieces = segment.split(SHALLOW)
        parts.append("([^/]*)".join(re.escape(piece) for piece in pieces))
    return cast(_Compiled, re2.compile("".join(parts)))


def match(pattern: str, name: str) -> tuple[str, ...] | None:
    """What each wildcard of `pattern` matched in `name`, or None when it does not match."""
    found = _compile(pattern).fullmatch(name)
    return None if found is None else tuple(found.groups())


def expand(target: str, captures: tuple[str, ...]) -> str:
    """`target` with its wildcards replaced, in order, by `captures` (one per wildcard)."""
    values = iter(captures)
    segments = []
    for segment in target.split("/"):
        if segment == DEEP:
            segments.append(next(values))
        else:
            pieces = segment.split(SHALLOW)
            segments.append(pieces[0] + "".join(next(values) + p for p in pieces[1:]))
    return "/".join(segments)


#: catalog names a scope keeps as examples of each kind it left out (it counts them all)
SAMPLES = 5


@dataclass(frozen=True, slots=True)
class Scope:
    """A glob rule's repositories: what to copy, and what was left out and why."""

    pairs: tuple[tuple[str, str], ...] = ()  # (source repository, target repository), sorted
    invalid: tuple[str, ...] = ()  # catalog names that are not repository names (unescaped)
    unmappable: tuple[str, ...] = ()  # matched, but the mapped target is not a valid name
    excluded: int = 0
    #: how many of each there were (the tuples above may hold only the first SAMPLES)
    invalid_count: int = 0
    unmappable_count: int = 0
    #: matching names the catalog listed again: skipped (a repository is copied once)
    repeated: int = 0


@dataclass(slots=True)
class ScopeWalk:
    """`scope` one catalog page at a time, in memory that does not grow with the catalog.

    Not every registry lists its catalog in lexical order (Quay pages by repository id), so
    order is not trusted: a matching name listed again is skipped and counted, which keeps one
    repository from being copied (and recorded) twice. The walk remembers the names it matched
    (the scope it returns anyway), never the whole catalog.
    """

    source: str
    target: str
    exclude: tuple[str, ...] = ()
    matched: int = 0
    _matched: set[str] = field(default_factory=set)
    _invalid: list[str] = field(default_factory=list)
    _unmappable: list[str] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("invalid", "unmappable", "excluded", "repeated"), 0))

    def feed(self, names: Iterable[str]) -> list[tuple[str, str]]:
        """The (source, target) pairs of one page, in the catalog's order."""
        pairs: list[tuple[str, str]] = []
        for name in names:
            pair = self._one(name)
            if pair is not None:
                pairs.append(pair)
        self.matched += len(pairs)
        return pairs

    def _one(self, name: str) -> tuple[str, str] | None:
        if not isinstance(name, str) or not is_repository(name):
            self._left_out("invalid", name, self._invalid)
            return None
        captures = match(self.source, name)
        if captures is None:
            return None
        if name in self._matched:
            self._counts["repeated"] += 1
            return None
        self._matched.add(name)
        if any(match(pattern, name) is not None for pattern in self.exclude):
            self._counts["excluded"] += 1
            return None
        mapped = expand(self.target, captures)
        if not is_repository(mapped):
            self._left_out("unmappable", name, self._unmappable)
            return None
        return name, mapped

    def _left_out(self, kind: str, name: str, samples: list[str]) -> None:
        self._counts[kind] += 1
        if len(samples) < SAMPLES:
            samples.append(name)

    def summary(self, pairs: Iterable[tuple[str, str]] = ()) -> Scope:
        """What was left out so far (with `pairs`, when a caller kept them)."""
        c = self._counts
        return Scope(tuple(pairs), tuple(self._invalid), tuple(self._unmappable), c["excluded"],
                     c["invalid"], c["unmappable"], c["repeated"])


def scope(names: Iterable[str], source: str, target: str, exclude: Iterable[str] = ()) -> Scope:
    """The repositories of a whole catalog listing that `source` matches, minus `exclude`, each
    with its target by `target`'s wildcards (pure, linear in the listing). The names are
    sorted first: a caller holding the whole listing need not trust its order."""
    listed = list(names)
    valid = sorted(n for n in listed if isinstance(n, str) and is_repository(n))
    invalid = [n for n in listed if not (isinstance(n, str) and is_repository(n))]
    walk = ScopeWalk(source, target, tuple(exclude))
    walk.feed(invalid)
    pairs = walk.feed(valid)
    found = walk.summary(pairs)
    return dataclasses.replace(found, invalid=tuple(invalid))
