"""The OCI 1.1 Referrers API (`GET /v2/<name>/referrers/<digest>`), as one request and its answer.

A registry with the API answers 200 with an OCI index of the subject's referrers (an empty one
for a subject it does not know); one without it (distribution 2.8) answers 404, or 405
UNSUPPORTED: both mean "no API here", and the caller falls back to the referrers tag schema.
The answer is a registry's data like any manifest: capped at 4 MiB and parsed by the same rules
(every descriptor checked), but it is not content-addressed, so there is no digest to verify.

A long answer comes in pages (`Link: <...>; rel="next"`), hostile input like any listing's:

    next Link to another origin or path           refused (registry/pagination.py's rules)
    all pages together over 4 MiB                 refused, read no further than the bound
    more than MAX_PAGES pages, or a page seen     refused (an answer that never ends)
    an empty page that links to another           refused
"""

from __future__ import annotations

import json

from ..base.errors import RemoteServerError, UnsupportedError
from ..oci.digest import parse_digest, sha256_digest
from ..oci.jsondoc import parse_json
from ..oci.manifest import IndexManifest, parse_manifest
from ..oci.reference import quoted_path
from ..oci.types import MAX_MANIFEST_BYTES, OCI_INDEX, RawManifest
from .session import Call, Reply

#: request counter key (client.counts) of a Referrers API request
KEY = "referrers.list"
#: pages of one subject's answer, at most (a page holds hundreds of referrers)
MAX_PAGES = 32


def referrers_call(repository: str, digest: str) -> Call:
    """The request a subject costs on a registry with the API (one, unless the answer is long
    enough to come in pages)."""
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


class Pages:
    """One subject's answer, page by page: each checked as it comes, then joined."""

    def __init__(self, *, registry: str) -> None:
        self._registry = registry
        self._entries: list[object] = []
        self._first: tuple[RawManifest, IndexManifest] | None = None
        self._object: dict[str, object] = {}
        self._bytes = 0
        self._seen: set[str] = set()

    @property
    def bytes_left(self) -> int:
        return max(MAX_MANIFEST_BYTES - self._bytes, 0)

    def add(self, reply: Reply) -> str | None:
        """Take one page; the `Link` it names as next, if any.

        Raises:
            RemoteServerError: not an index, an invalid one, or an empty page that links on.
            UnsupportedError: the pages together are larger than 4 MiB.
        """
        self._bytes += len(reply.body)
        if self._bytes > MAX_MANIFEST_BYTES:
            raise UnsupportedError("a referrers answer larger than 4 MiB", registry=self._registry)
        raw, index = referrers_answer(reply, registry=self._registry)
        following = reply.links.get("next", {}).get("url")
        if following and not index.manifests:
            raise RemoteServerError("the referrers answer has an empty page that links to "
                                    "another", registry=self._registry)
        obj = parse_json(raw.raw)  # parsed above: an object with a list of manifests
        if self._first is None and isinstance(obj, dict):
            self._first, self._object = (raw, index), obj
        entries = obj.get("manifests") if isinstance(obj, dict) else None
        self._entries.extend(entries if isinstance(entries, list) else [])
        return following or None

    def visit(self, target: str) -> None:
        """Note the next page's request target before it is fetched.

        Raises:
            RemoteServerError: seen already, or one page too many.
        """
        if target in self._seen or len(self._seen) + 1 >= MAX_PAGES:
            raise RemoteServerError(f"the referrers answer has more than {MAX_PAGES} pages, or "
                                    "its pages loop", registry=self._registry)
        self._seen.add(target)

    def answer(self) -> tuple[RawManifest, IndexManifest]:
        """The pages as one index (the first page's own bytes when there was one)."""
        if self._first is not None and not self._seen:
            return self._first
        body = json.dumps({**self._object, "manifests": self._entries},
                          separators=(",", ":"), ensure_ascii=False).encode()
        raw = RawManifest(body, OCI_INDEX, sha256_digest(body))
        index = parse_manifest(raw, registry=self._registry)
        assert isinstance(index, IndexManifest)  # each page was one
        return raw, index
