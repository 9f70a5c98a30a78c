"""Parse image references with docker's normalisation rules: pure, no I/O.

`nginx` means `registry-1.docker.io/library/nginx`: a first path component is a registry only if
it looks like a host (has a `.` or a `:`, is `localhost`, or has upper case, which repositories
may not), and Docker Hub's single-component names live under `library/`. Every Docker Hub alias
(`docker.io`, `index.docker.io`) becomes the API host, `registry-1.docker.io`, so equal images
compare equal. Grammar from distribution's reference/regexp.go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from ..values.names import COMPONENT, REPOSITORY_MAX

DOCKER_HUB = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", DOCKER_HUB})

_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
_DOMAIN = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, slots=True)
class Reference:
    """A fully qualified image reference; `tag` and `digest` may both be set, or neither."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to put after `/manifests/`: the digest if pinned, else the tag, else latest."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse and normalise `[registry/]repository[:tag][@digest]`.

    Raises:
        ValueError: the text is not a valid reference; the message says which part and why.
    """
    remainder, digest = _split_digest(text.strip(), text)
    remainder, tag = _split_tag(remainder, text)
    registry, repository = _split_registry(remainder, text)
    _check_repository(repository, text)
    return Reference(registry, repository, tag, digest)


def _split_digest(text: str, original: str) -> tuple[str, str | None]:
    if not text:
        raise ValueError("invalid reference '': it is empty")
    name, at, digest = text.partition("@")
    if not at:
        return text, None
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"invalid reference {original!r}: {digest!r} is not a digest")
    algorithm, _, hex_part = digest.partition(":")
    wanted = _HEX_LENGTHS.get(algorithm)
    if wanted is not None and not re.fullmatch(rf"[a-f0-9]{{{wanted}}}", hex_part):
        raise ValueError(
            f"invalid reference {original!r}: a {algorithm} digest is {wanted} lower-case hex digits"
        )
    return name, digest


def _split_tag(text: str, original: str) -> tuple[str, str | None]:
    colon = text.rfind(":")
    if colon <= text.rfind("/"):
        return text, None  # the colon, if any, belongs to a registry's port
    name, tag = text[:colon], text[colon + 1 :]
    if not _TAG.fullmatch(tag):
        raise ValueError(
            f"invalid reference {original!r}: tag {tag!r} must be 1-128 of [A-Za-z0-9_.-], "
            "not starting with . or -"
        )
    return name, tag


def _split_registry(text: str, original: str) -> tuple[str, str]:
    first, slash, rest = text.partition("/")
    looks_like_host = (
        any(c in first for c in ".:") or first == "localhost" or first != first.lower()
    )
    if not slash or not looks_like_host:
        registry, repository = DOCKER_HUB, text
    else:
        if not _DOMAIN.fullmatch(first):
            raise ValueError(f"invalid reference {original!r}: {first!r} is not a registry host")
        registry, repository = first.lower(), rest
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    return registry, repository


def _check_repository(repository: str, original: str) -> None:
    if not repository:
        raise ValueError(f"invalid reference {original!r}: the repository name is empty")
    if len(repository) > REPOSITORY_MAX:
        raise ValueError(f"invalid reference {original!r}: the repository name is over 255 chars")
    for component in repository.split("/"):
        if not COMPONENT.fullmatch(component):
            reason = "must be lower case" if component != component.lower() else "is not valid"
            raise ValueError(
                f"invalid reference {original!r}: repository path component {component!r} "
                f"{reason} (letters, digits, and . _ __ - between them)"
            )


def is_docker_hub(host: str) -> bool:
    return host.lower() in _DOCKER_HUB_ALIASES


def canonical_repository(host: str, repository: str) -> str:
    """Docker Hub's official images live under `library/`: `nginx` there means `library/nginx`."""
    if is_docker_hub(host) and "/" not in repository:
        return f"library/{repository}"
    return repository


def is_tag(text: str) -> bool:
    """Whether `text` is a tag by distribution's grammar (`[\\w][\\w.-]{0,127}`, ASCII).

    What a tag can never be is what makes it safe in a URL path: no `/`, no `..` segment (it
    cannot start with `.`), no `%`, `?`, `#`, space or control character.
    """
    return text.isascii() and _TAG.fullmatch(text) is not None


def is_reference(text: str) -> bool:
    """Whether `text` may follow `/manifests/`: a tag or a digest."""
    if ":" not in text:
        return is_tag(text)
    if not text.isascii() or _DIGEST.fullmatch(text) is None:
        return False
    algorithm, _, hex_part = text.partition(":")
    wanted = _HEX_LENGTHS.get(algorithm)
    return wanted is None or re.fullmatch(rf"[a-f0-9]{{{wanted}}}", hex_part) is not None


def split_tags(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(valid tags, invalid names) of a listing, each in the order listed (pure)."""
    valid: list[str] = []
    invalid: list[str] = []
    for name in names:
        (valid if is_tag(name) else invalid).append(name)
    return valid, invalid


def quoted_path(repository: str, *rest: str) -> str:
    """`/v2/<repository>/<rest...>` with each part percent-encoded (`/` kept only between
    repository components), so no part can add, remove or climb a path segment."""
    components = repository.split("/")
    if any(c in ("", ".", "..") for c in components):  # validated names never are: belt and braces
        raise ValueError(f"repository name {repository!r} has an empty or dot path segment")
    parts = [quote(component, safe="") for component in components]
    parts += [quote(part, safe=":") for part in rest]  # ":" of a digest is a valid pchar
    return "/v2/" + "/".join(parts)
