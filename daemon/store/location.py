"""Where the store lives: an SQLite file (the embedded default) or a PostgreSQL server's URL.

`--db` takes either. A URL may carry a password (`postgresql://user:secret@host/db`): the
location keeps it for connecting only, and everything that prints a location (logs, errors,
the API's `GetStats`) uses `shown`, where the password is `***`. A password is better kept
out of the URL entirely: libpq reads `$PGPASSWORD` and `~/.pgpass` as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..base.errors import ConfigError

SCHEMES = ("postgresql", "postgres")
MEMORY = ":memory:"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed `--db`: `url` is set for PostgreSQL (password included), else `path`."""

    shown: str  # safe to print: the password replaced by ***
    path: str = ""
    url: str = field(default="", repr=False)
    password: str = field(default="", repr=False)

    @property
    def postgres(self) -> bool:
        return bool(self.url)

    def scrub(self, text: str) -> str:
        """`text` (a driver's message, say) with this location's password masked."""
        if self.password and len(self.password) >= 3:
            text = text.replace(self.password, "***")
        if self.url:
            text = text.replace(self.url, self.shown)
        return text


def parse_location(text: str) -> StoreLocation:
    """`--db`'s value: a `postgresql://` URL, or anything else as an SQLite file path.

    Raises:
        ConfigError: a PostgreSQL URL without a host or a database name.
    """
    scheme = text.split(":", 1)[0].lower() if "://" in text else ""
    if scheme not in SCHEMES:
        return StoreLocation(shown=text, path=text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:  # a port that is not a number: the message names no secret
        raise ConfigError(f"--db: not a PostgreSQL URL ({exc})") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    secrets = [value for key, value in query if key in _SECRET_KEYS]
    password = unquote(parts.password or "") or (secrets[0] if secrets else "")
    shown = _without_password(text, parts.username, port)
    database = parts.path.lstrip("/")
    if not parts.hostname or not database or "/" in database:
        raise ConfigError(
            f"--db {shown}: give postgresql://USER@HOST[:PORT]/DATABASE (a host and a database)"
        )
    return StoreLocation(shown=shown, url=text, password=password)


def _without_password(text: str, username: str | None, port: int | None) -> str:
    parts = urlsplit(text)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    if username is not None:
        user = username + (":***" if parts.password is not None else "")
        host = f"{user}@{host}"
    query = [(key, "***" if key in _SECRET_KEYS else value)
             for key, value in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query, safe="*/"), ""))


#: libpq's URL parameters that hold a secret (`?password=...` works like `user:password@`)
_SECRET_KEYS = frozenset({"password", "sslpassword"})
