"""Where the panel may send a browser after login: its own paths only (open redirects).

Apart from `guard` because the pages import it, and the pages import nothing of the daemon.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def local_path(target: str) -> str | None:
    """`target` if it is a path of this panel ("/tasks?x=1"), else None.

    Refused: anything not starting with exactly one "/", any backslash (browsers read "/\\x" as
    "//x", another host), control characters, spaces and other non-printable or non-ASCII
    characters (some are stripped by URL parsers, turning "/\\t/x" into "//x"), a scheme or host,
    and "." or ".." segments.
    """
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if not target.isascii() or any(not (0x21 <= ord(c) < 0x7F) for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return None
    return target
