"""Parse `WWW-Authenticate` headers (RFC 7235) and token-auth scopes: pure functions, no I/O.

The grammar is ambiguous on purpose-built junk: commas separate both challenges and parameters,
and a comma may sit inside a quoted value (distribution sends `scope="repository:a:pull,push"`).
The scanner below resolves it the way browsers and Docker do: after a comma, `name=` continues
the current challenge, anything else starts a new one. Registries in the wild also send unquoted
values with `/` and `:` in them, so unquoted values run to the next comma or space. Junk never
raises: the parser keeps what it could read, since a half-parsed challenge is still a useful hint
and an exception here would only hide the registry's real 401.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*[ \t]*(?=,|$)")
_PARAM_START = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=(?!=)")
_BARE_VALUE = re.compile(r"[^,\s]*")
_SPACE = re.compile(r"[ \t]*")


@dataclass(frozen=True, slots=True)
class Challenge:
    """One authentication challenge: its scheme and parameters (both lower-cased keys)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def __post_init__(self) -> None:
        # A read-only view keeps the frozen value honest: nobody can edit a shared challenge.
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def scopes(self) -> tuple[str, ...]:
        """The challenge's `scope` parameter split on spaces (some registries send several)."""
        return tuple(self.params.get("scope", "").split())


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a `WWW-Authenticate` value, in order; never raises."""
    return list(_Scanner(header).challenges())


def merge_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes in canonical form: one entry per resource with its actions united and sorted.

    `repository:a:pull` and `repository:a:push` become `repository:a:pull,push`, so equal needs
    share one token cache entry whatever order or split the caller and the registry used.
    """
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        resource, sep, acts = scope.strip().rpartition(":")
        if not sep or not resource:
            if scope.strip():
                actions.setdefault(scope.strip(), set())
            continue
        actions.setdefault(resource, set()).update(a for a in acts.split(",") if a)
    return tuple(
        f"{resource}:{','.join(sorted(acts))}" if acts else resource
        for resource, acts in sorted(actions.items())
    )


class _Scanner:
    """A cursor over one header value; each method consumes what it recognises."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def challenges(self) -> Iterable[Challenge]:
        while self._skip_separators():
            scheme = self._match(_TOKEN)
            if scheme is None:
                self._skip_past_comma()  # junk: resynchronise on the next comma
                continue
            yield self._challenge(scheme.lower())

    def _challenge(self, scheme: str) -> Challenge:
        if not self._match(_SPACE):
            return Challenge(scheme)  # scheme alone, followed by a comma or the end
        token68 = self._match(_TOKEN68)
        if token68 is not None:
            return Challenge(scheme, token68=token68.strip())
        params: dict[str, str] = {}
        while self._at(_PARAM_START):
            name = self._match(_TOKEN) or ""
            self._match(_SPACE)
            self.pos += 1  # the "="
            self._match(_SPACE)
            params.setdefault(name.lower(), self._value())
            if not self._next_param():
                break
        return Challenge(scheme, params)

    def _next_param(self) -> bool:
        """Consume a comma if a parameter of the same challenge follows it."""
        start = self.pos
        self._match(_SPACE)
        while self.pos < len(self.text) and self.text[self.pos] in ", \t":
            self.pos += 1
        if self._at(_PARAM_START):
            return True
        self.pos = start
        return False

    def _value(self) -> str:
        if self.pos < len(self.text) and self.text[self.pos] == '"':
            return self._quoted()
        return self._match(_BARE_VALUE) or ""

    def _quoted(self) -> str:
        out: list[str] = []
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                break
            if char == "\\" and self.pos < len(self.text):
                char = self.text[self.pos]
                self.pos += 1
            out.append(char)
        return "".join(out)  # an unterminated string keeps what it had

    def _skip_separators(self) -> bool:
        while self.pos < len(self.text) and self.text[self.pos] in ", \t\r\n":
            self.pos += 1
        return self.pos < len(self.text)

    def _skip_past_comma(self) -> None:
        comma = self.text.find(",", self.pos)
        self.pos = len(self.text) if comma < 0 else comma + 1

    def _at(self, pattern: re.Pattern[str]) -> bool:
        return pattern.match(self.text, self.pos) is not None

    def _match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if found is None or (not found.group() and pattern is not _BARE_VALUE):
            return None
        self.pos = found.end()
        return found.group()
