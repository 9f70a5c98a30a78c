"""Tag regexes in a linear-time engine: RE2 (Go's regexp syntax, the seed's config language).

A tag filter comes from a config file or an API client and runs over every tag a source lists, so
Python's backtracking `re` would let one pattern such as `^(a+)+$` hold the daemon's thread for
hours. RE2 matches in time linear in the tag, whatever the pattern. What it refuses (with a
clear error) compared with Python's `re`: backreferences (`\\1`), lookaround (`(?=`, `(?!`,
`(?<=`, `(?<!`), possessive and atomic groups, `\\Z` (use `\\z` or `$`), repetition counts above
1000. `\\d`, `\\w` and `\\s` are ASCII only (Python's match any Unicode digit, letter, space).
"""

from __future__ import annotations

import functools
from typing import Protocol, cast

import re2

#: said with a refused feature, so a user knows it is the engine, not a typo
RE2_HINT = "RE2 syntax: no backreferences or lookaround"


class TagRegexError(ValueError):
    """The pattern is not valid RE2; the message is RE2's own reason."""


class TagRegex(Protocol):
    """The part of a compiled RE2 pattern the filters use."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> object | None: ...


def _options() -> object:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    return options


_OPTIONS = _options()


@functools.lru_cache(maxsize=512)
def compile_tag_regex(pattern: str) -> TagRegex:
    """Compile once per pattern: rules run on every schedule tick with the same patterns.

    Raises:
        TagRegexError: RE2 refuses the pattern (invalid, or a feature it does not have).
    """
    try:
        return cast(TagRegex, re2.compile(pattern, _OPTIONS))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        unsupported = "perl operator" in reason or "escape sequence" in reason
        raise TagRegexError(f"{reason} ({RE2_HINT})" if unsupported else reason) from None
