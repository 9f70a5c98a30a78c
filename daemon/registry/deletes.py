"""Deleting a manifest or a tag (`DELETE /v2/<name>/manifests/<reference>`): prune's requests.

Two forms, with different reach:

    DELETE .../manifests/<tag>      OCI 1.1: removes that tag only; the manifest and its other
                                    tags stay. distribution 2.8 answers 400 DIGEST_INVALID (it
                                    wants a digest); others 405 or UNSUPPORTED: "not here".
    DELETE .../manifests/<digest>   removes the manifest and EVERY tag pointing at it (the
                                    caller deletes one only when no kept tag points at it).

A registry that refuses deletes altogether answers 405 (distribution: UNSUPPORTED when
`storage.delete.enabled` is false; Harbor when an immutability or retention rule holds the
tag): that is the registry operator's setting, so the error says which one to look at.
"""

from __future__ import annotations

from ..errors import DeleteRefusedError, DigestMismatchError, RegistryError, UnsupportedError
from .digest import parse_digest
from .reference import quoted_path
from .transport import Call

#: request counter keys (client.counts)
TAG_KEY = "manifest.delete.tag"
DIGEST_KEY = "manifest.delete"

#: what a registry refusing deletes should have changed, in its operator's words
REFUSED_HINT = (
    "the registry refuses deletes: on distribution (docker-registry) set"
    " storage.delete.enabled: true; on Harbor check the project's tag immutability and"
    " retention rules; or set prune: false on this rule"
)


def _scopes(repository: str) -> tuple[str, ...]:
    return (f"repository:{repository}:delete",)


def tag_call(repository: str, tag: str) -> Call:
    """Delete one tag by name (OCI 1.1); the tag is already checked against the grammar."""
    return Call("DELETE", quoted_path(repository, "manifests", tag), TAG_KEY,
                f"tag {repository}:{tag}", scopes=_scopes(repository), repository=repository)


def digest_call(repository: str, digest: str) -> Call:
    """Delete a manifest (and every tag pointing at it) by its digest."""
    parse_digest(digest)  # a digest from the registry's own header; checked before a URL
    return Call("DELETE", quoted_path(repository, "manifests", digest), DIGEST_KEY,
                f"manifest {repository}@{digest}", scopes=_scopes(repository),
                repository=repository)


def tag_form_unsupported(exc: RegistryError) -> bool:
    """The registry does not delete by tag name (it may still delete by digest)."""
    return (isinstance(exc, (DigestMismatchError, UnsupportedError))
            or exc.status in (400, 405))


def refused(exc: RegistryError, what: str) -> RegistryError:
    """A digest delete's error, turned into DeleteRefusedError when the registry refuses deletes
    as such (405 or UNSUPPORTED); any other error is returned unchanged."""
    if isinstance(exc, UnsupportedError) or exc.status == 405:
        return DeleteRefusedError(f"{what}: {REFUSED_HINT} ({exc})", registry=exc.registry,
                                  status=exc.status, codes=exc.codes)
    return exc
