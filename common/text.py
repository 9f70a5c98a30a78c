"""Text from registries and the daemon, made safe to show: control characters become escapes.

A tag, a repository name, an error body or a log line may come from a registry nobody trusts: a
raw ESC (`\\x1b[2J`, a terminal's "clear screen", or an OSC 8 hyperlink), a carriage return that
overwrites what came before, a bidi override that shows "1.0" for what is really "0.1": each is
written as its escape instead (`\\x1b`, `\\r`, `\\u202e`), visibly and reversibly.
"""

from __future__ import annotations

import re

#: C0 controls, DEL, C1 controls; the Unicode line and paragraph separators; bidi embeddings,
#: overrides and isolates; zero-width and BOM characters that hide text
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]")
_UNSAFE_KEEPING_LINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control (and invisible or reordering) character as its escape.

    `keep_newlines` leaves "\\n" alone, for messages that are several lines by design (a list of
    config problems); every other control character is still escaped, "\\r" among them.
    """
    pattern = _UNSAFE_KEEPING_LINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, text)
