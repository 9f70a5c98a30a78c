"""The OCI 1.1 Referrers API (`GET /v2/<name>/referrers/<digest>`), as one request and its answer.

A registry with the API answers 200 with an OCI index of the subject's referrers (an empty one
for a subject it does not know); one without it (distribution 2.8) answers 404, or 405
UNSUPPORTED: both mean "no API here", and the caller falls back to the referrers tag schema.
The answer is a registry's data like any manifest: capped at 4 MiB and parsed by the same rules
(every descriptor checked), but it is not content-addressed, so there is no digest to verify.
"""

from __future__ import annotations

from ..base.errors import RemoteServerError, UnsupportedError
from ..oci.digest import parse_digest, sha256_digest
from ..oci.manifest import IndexManifest, parse_manifest
from ..oci.reference import quoted_path
from ..oci.types import MAX_MANIFEST_BYTES, OCI_INDEX, RawManifest
from .session import Call, Reply

#: request counter key (client.counts) of a Referrers API request
KEY = "referrers.list"


def referrers_call(repository: str, digest: str) -> Call:
    """The one request a subject costs on a registry with the API (first page only: a page
    holds hundreds of referrers; more are rare and a later run sees them in the fallback)."""
    parse_digest(digest)  # a digest from a verified manifest; belt and braces before a URL
    return Call(
        "GET",
        quoted_path(repository, "referrers", digest),
        KEY,
        f"referrers of {digest} in {repository}",
        scopes=(f"repository:{repository}:pull",),
        repository=repository,
        headers=(("Accept", OCI_INDEX),),
        body_limit=MAX_MANIFEST_BYTES,
    )


def referrers_answer(reply: Reply, *, registry: str) -> tuple[RawManifest, IndexManifest]:
    """The index the API served, checked like a manifest.

    Raises:
        RemoteServerError: not an index, or an invalid one.
        UnsupportedError: larger than 4 MiB.
    """
    if len(reply.body) > MAX_MANIFEST_BYTES:
        raise UnsupportedError("a referrers answer larger than 4 MiB", registry=registry)
    raw = RawManifest(reply.body, OCI_INDEX, sha256_digest(reply.body))
    index = parse_manifest(raw, registry=registry)
    if not isinstance(index, IndexManifest):
        raise RemoteServerError("the referrers answer is not an index", registry=registry)
    return raw, index
