"""Which source tags a rule copies: include and exclude regexes, a semver range, the newest N.

Pure: the engine lists tags, calls `select_tags`, and logs every dropped tag with its reason, so
a user who wonders why "1.19" was not copied reads the answer in the run log.

The filters apply in this order, each to what the previous ones kept:
1. include: keep a tag if ANY regex matches somewhere in it (search, not match); none given
   keeps all. Regexes are RE2 (`tagregex`): linear time, whatever the pattern.
2. exclude: drop a tag if ANY regex matches.
3. semver: keep only tags that are versions within the range (`versions.VersionRange`).
4. latest N: of what remains, the newest N by `versions.version_key` (non-version tags sort
   below every version, so they go first).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..base.errors import ConfigError
from ..base.safetext import SHOWN_MAX, escape_controls
from ..oci.reference import split_tags
from ..oci.referrers import FOLLOWS_SUBJECT, is_referrer_tag
from ..settings import SyncRule, TagFilter
from ..values.tagregex import TagRegex, TagRegexError, compile_tag_regex
from ..values.versions import VersionRange, parse_version, version_key


@dataclass(frozen=True, slots=True)
class TagSelection:
    """The outcome of filtering: kept and dropped partition the input tags."""

    #: tags to copy, in version order, newest last
    kept: tuple[str, ...]
    #: (tag, reason), in version order
    dropped: tuple[tuple[str, str], ...]


def select_tags(
    tags: Iterable[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    semver: str | None = None,
    latest: int | None = None,
) -> TagSelection:
    """Apply a rule's tag filters (order and meaning in the module docstring).

    A tag listed twice is kept once; the repeat is dropped as a duplicate.

    Raises:
        ConfigError: a regex or the semver range is invalid, or `latest` is negative.
    """
    includes = tuple(_regex(p) for p in include)
    excludes = tuple(_regex(p) for p in exclude)
    version_range = _range(semver) if semver is not None else None
    if latest is not None and latest < 0:
        raise ConfigError(f"latest must be 0 or more, got {latest}")
    return _select(tags, includes, excludes, version_range, latest)


def select_rule_tags(tags: Iterable[str], filters: TagFilter) -> TagSelection:
    """`select_tags` with a rule's filters, already parsed when its settings were built."""
    return _select(tags, filters.includes, filters.excludes, filters.version_range,
                   filters.latest)


def _select(
    tags: Iterable[str],
    includes: Sequence[TagRegex],
    excludes: Sequence[TagRegex],
    version_range: VersionRange | None,
    latest: int | None,
) -> TagSelection:
    remaining: list[str] = []
    dropped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for tag in tags:
        if tag in seen:
            dropped.append((tag, "duplicate tag in the listing"))
            continue
        seen.add(tag)
        reason = _rejection(tag, includes, excludes, version_range)
        if reason is None:
            remaining.append(tag)
        else:
            dropped.append((tag, reason))

    remaining.sort(key=version_key)
    if latest is not None:
        cut = max(len(remaining) - latest, 0)
        dropped.extend((tag, f"not in the newest {latest}") for tag in remaining[:cut])
        remaining = remaining[cut:]
    dropped.sort(key=lambda item: version_key(item[0]))
    return TagSelection(tuple(remaining), tuple(dropped))


def _rejection(
    tag: str,
    includes: Sequence[TagRegex],
    excludes: Sequence[TagRegex],
    version_range: VersionRange | None,
) -> str | None:
    """Why the include, exclude and semver filters drop `tag`, or None when they keep it."""
    if includes and not any(p.search(tag) for p in includes):
        return "no include pattern matched"
    for pattern in excludes:
        if pattern.search(tag):
            return f"excluded by {pattern.pattern!r}"
    if version_range is not None:
        version = parse_version(tag)
        if version is None:
            return "not a version (semver filter)"
        if not version_range.contains(version):
            return f"outside the version range {version_range.text!r}"
    return None


def _regex(pattern: str) -> TagRegex:
    try:
        return compile_tag_regex(pattern)
    except TagRegexError as exc:
        raise ConfigError(f"invalid tag regex {pattern!r}: {exc}") from None


@functools.lru_cache(maxsize=64)
def _range(text: str) -> VersionRange:
    try:
        return VersionRange.parse(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


#: why a listed name was dropped before any filter: it is not a tag (`[\w][\w.-]{0,127}`)
INVALID_TAG = "not a valid tag name: skipped, never requested"

def rule_tags(rule: SyncRule, tags: Iterable[str]) -> TagSelection:
    """The rule's tag filters applied to the valid tags of `tags` (pure); names that are not
    tags are dropped first, shown escaped, with the reason INVALID_TAG."""
    valid, invalid = split_tags(tags)
    followers = [t for t in valid if rule.referrers and is_referrer_tag(t)]
    if followers:  # they travel with their subjects, whatever the filters say
        valid = [t for t in valid if not is_referrer_tag(t)]
    selection = select_rule_tags(valid, rule.tags)
    if not invalid and not followers:
        return selection
    shown = tuple((escape_controls(tag)[:SHOWN_MAX], INVALID_TAG) for tag in invalid)
    follow = tuple((tag, FOLLOWS_SUBJECT) for tag in followers)
    return TagSelection(selection.kept, selection.dropped + follow + shown)

