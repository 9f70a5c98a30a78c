"""Listings (`tags/list`, `_catalog`) page by page, within bounds. Pure: no I/O.

A registry decides how many pages a listing has and where the next one is (`Link:
<url>; rel="next"`), so both are hostile input. Rules:

    next Link to another scheme, host or port     refused, nothing fetched (our credentials
                                                  and the user's trust are for one origin)
    next Link to another path                     refused (a listing pages through itself)
    more names than `max_names`                   refused: the listing never ends, or the bound
                                                  is too low for this repository (it is named)
    more body bytes than `max_bytes`, all pages   refused, read no further than the bound
    an empty page that still links to another     refused (an honest registry never does)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..base.safetext import escape_controls

_DEFAULT_PORTS = {"http": 80, "https": 443}


class PageRefused(ValueError):
    """The listing cannot go on; the message says why (the caller adds registry and setting)."""

    def __init__(self, message: str, *, limit: str | None = None) -> None:
        super().__init__(message)
        #: the setting (global.limits.<name>) that bounded it, when one did
        self.limit = limit


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def next_page(base_url: str, path: str, link: str) -> str:
    """The request target ("/v2/...?...") of the page `link` points at, relative to `base_url`.

    `path` is the listing's own path, as first requested.

    Raises:
        PageRefused: the link leaves the registry's origin or the listing's path.
    """
    absolute = urljoin(base_url + path, link.strip())
    parts = urlsplit(absolute)
    if _origin(absolute) != _origin(base_url) or parts.username or parts.password:
        scheme, host, port = _origin(absolute)
        shown = escape_controls(f"{scheme}://{host}:{port}")[:200]
        raise PageRefused(
            f"the next-page Link points to another origin ({shown}, not {base_url}); not followed"
        )
    if parts.path != path:
        raise PageRefused("the next-page Link points to another path than the listing's own")
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True, slots=True)
class ListingLimits:
    """Bounds of one listing, all pages together."""

    max_names: int
    max_bytes: int


@dataclass(slots=True)
class ListingTally:
    """What a listing has cost so far; `add` each page, it refuses the one that goes too far."""

    limits: ListingLimits
    names: int = 0
    bytes: int = 0

    @property
    def bytes_left(self) -> int:
        return max(self.limits.max_bytes - self.bytes, 0)

    def add_body(self, size: int) -> None:
        """Count one page's body, before it is parsed.

        Raises:
            PageRefused: the listing goes past `max_bytes`.
        """
        self.bytes += size
        if self.bytes > self.limits.max_bytes:
            raise PageRefused(
                f"the listing is larger than {self.limits.max_bytes} bytes", limit="max_listing_bytes"
            )

    def add_names(self, names: int, *, has_next: bool) -> None:
        """Count one page's names.

        Raises:
            PageRefused: the listing goes past `max_names`, or the page is empty yet links on.
        """
        self.names += names
        if self.names > self.limits.max_names:
            raise PageRefused(
                f"the listing has more than {self.limits.max_names} names", limit="max_tags"
            )
        if has_next and names == 0:
            raise PageRefused("an empty page links to a next one (a listing that never ends)")
