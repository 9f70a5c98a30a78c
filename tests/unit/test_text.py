"""escape_controls: what regsyncctl and the panel show of names and messages from registries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from regsync.common.text import escape_controls


@pytest.mark.parametrize(("raw", "shown"), [
    ("1.0\x1b[2J", "1.0\\x1b[2J"),  # ESC: a terminal's "clear screen"
    ("a\rb", "a\\rb"),  # a carriage return overwrites the start of the line
    ("x\nINFO forged", "x\\nINFO forged"),  # a forged line in a log
    ("tab\there", "tab\\there"),
    ("\x00\x07\x7f", "\\x00\\x07\\x7f"),
    ("\x9b31m", "\\x9b31m"),  # C1 CSI: ESC [ in one byte
    ("abc\u202edef", "abc\\u202edef"),  # right-to-left override: shows "abcfed"
    ("\u2066x\u2069", "\\u2066x\\u2069"),  # bidi isolates
    ("a\u200bb\ufeff", "a\\u200bb\\ufeff"),  # zero width space, BOM
    ("line\u2028break", "line\\u2028break"),
    ("1.25-alpine é 中 ✓ 🐳", "1.25-alpine é 中 ✓ 🐳"),  # printable text is left alone
    ("C:\\path \\x1b", "C:\\path \\x1b"),  # backslashes stay as they are
    ("", ""),
])
def test_control_characters_become_escapes(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown


def test_keep_newlines_keeps_only_newlines() -> None:
    assert escape_controls("2 problems:\na\x1b\nb\r", keep_newlines=True) == (
        "2 problems:\na\\x1b\nb\\r")


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    shown = escape_controls(text)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in shown)
    assert not set(shown) & {"\u2028", "\u2029", "\u202e", "\u2066", "\u200b", "\ufeff"}
    kept = escape_controls(text, keep_newlines=True)
    assert kept.count("\n") == text.count("\n")
    assert not any(ord(c) < 0x20 and c != "\n" for c in kept)


def test_the_clients_import_no_daemon_module() -> None:
    """regsyncctl and the panel share this module, not the daemon's code (nor its weight)."""
    import subprocess
    import sys

    check = ("import sys, regsync.ctl.main, regsync.ui.app, regsync.ui.pages.execution; "
             "print(sorted(m for m in sys.modules if m.startswith('regsync.daemon')))")
    out = subprocess.run([sys.executable, "-c", check], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"
