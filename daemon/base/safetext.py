"""Text from registries, shown safely: control characters escaped, length capped. Pure.

A tag or an error body is hostile input: printed raw, `\\x1b[2J` clears a terminal and a
`\\r` rewrites a log line. Everything the daemon writes to its log or console that may hold a
registry's words passes `escape_controls`, which keeps ordinary text (any script) as it is.
"""

from __future__ import annotations

import logging
import unicodedata

#: shown names are cut here (a tag is at most 128 characters; anything longer is junk)
SHOWN_MAX = 200


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _unsafe(char: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cf: bidi overrides and other invisible formatting;
    # Zl/Zp: line and paragraph separators, which end a line in some terminals and viewers
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with control and invisible formatting characters as `\\xNN` escapes.

    Backslashes stay as they are (regexes and paths are quoted in messages too), so an escape
    sequence and the same characters typed out look alike; neither can drive a terminal. With
    `keep_newlines`, "\\n" stays (multi-line messages such as tracebacks).
    """
    if text.isprintable():
        return text  # the common case, checked in C
    return "".join(
        _escape(c) if _unsafe(c) and not (keep_newlines and c == "\n") else c for c in text
    )


def shown_name(name: str, limit: int = SHOWN_MAX) -> str:
    """A registry-given name for a message: escaped, quoted, at most `limit` characters."""
    text = escape_controls(name)
    if len(text) > limit:
        text = f"{text[:limit]}...({len(name)} characters)"
    return f"'{text}'"


class EscapingFormatter(logging.Formatter):
    """A log formatter whose lines carry no raw control characters from the messages they
    quote (a registry's names and words reach log records through arguments)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record), keep_newlines=True)
