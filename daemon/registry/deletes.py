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

from ..base.errors import (
    DeleteRefusedError,
    DigestMismatchError,
    InvalidNameError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
)
from ..base.safetext import shown_name
from ..oci.digest import parse_digest
from ..oci.reference import is_tag, quoted_path
from .session import Call, Session

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


async def delete_tag(s: Session, repository: str, tag: str) -> bool:
    """Remove one tag by name (OCI 1.1), its manifest and other tags kept. False when the
    registry deletes only by digest (distribution 2.8). NotFoundError: the tag is gone (or the
    registry reads the reference as a digest: the caller asks with a HEAD)."""
    if not is_tag(tag):  # a name outside the grammar is never sent
        raise InvalidNameError(f"tag {repository}: {shown_name(tag)} is not a valid tag;"
                               " not requested", registry=s.registry)
    call = Call("DELETE", quoted_path(repository, "manifests", tag), TAG_KEY,
                f"tag {repository}:{tag}", scopes=_scopes(repository), repository=repository)
    try:
        await s.send(call)
    except NotFoundError:
        raise
    except RegistryError as exc:
        if _tag_form_unsupported(exc):
            return False
        raise
    return True


async def delete_manifest(s: Session, repository: str, digest: str) -> None:
    """Remove a manifest and every tag pointing at it. NotFoundError: gone already.

    Raises:
        DeleteRefusedError: the registry refuses deletes (its setting, named in the message).
    """
    parse_digest(digest)  # a digest from the registry's own header; checked before a URL
    call = Call("DELETE", quoted_path(repository, "manifests", digest), DIGEST_KEY,
                f"manifest {repository}@{digest}", scopes=_scopes(repository),
                repository=repository)
    try:
        await s.send(call)
    except NotFoundError:
        raise
    except RegistryError as exc:
        raise _refused(exc, call.what) from None


def _tag_form_unsupported(exc: RegistryError) -> bool:
    """The registry does not delete by tag name (it may still delete by digest)."""
    return (isinstance(exc, (DigestMismatchError, UnsupportedError))
            or exc.status in (400, 405))


def _refused(exc: RegistryError, what: str) -> RegistryError:
    """A digest delete's error, turned into DeleteRefusedError when the registry refuses deletes
    as such (405 or UNSUPPORTED); any other error is returned unchanged."""
    if isinstance(exc, UnsupportedError) or exc.status == 405:
        return DeleteRefusedError(f"{what}: {REFUSED_HINT} ({exc})", registry=exc.registry,
                                  status=exc.status, codes=exc.codes)
    return exc
