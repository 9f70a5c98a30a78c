"""The Registry HTTP API V2 client: the `RegistryPort` the engine copies through.

Each method states one registry operation as a `Call`; the transport's `Session` does the rest
(QPS, scopes, retries, timeouts, error mapping), so nothing here sees raw httpx errors. What this
module adds is the protocol's own rules: Link pagination, manifest digest checks, and the blob
upload dance (`upload.py`), which never commits bytes that do not hash to their digest.
Names are data, never paths: every URL is built by `quoted_path` from percent-encoded parts, a
reference that is not a tag or digest is refused before any request (`InvalidNameError`), and a
listing is bounded by `global.limits` and follows only same-origin Links (registry/pagination.py).

Request counters (`counts`, one per HTTP request sent, retries included) are keyed: ping,
tags.list, catalog.list, manifest.head, manifest.head.fallback (a HEAD without digest header,
answered by a GET), manifest.get, manifest.put, blob.head, blob.mount, blob.get,
blob.upload.start, blob.upload.chunk, blob.upload (the committing PUT, streamed with the body
when the size is known), blob.upload.cancel, referrers.list (the OCI 1.1 Referrers API), retry.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace
from types import TracebackType
from typing import Self

import httpx
import trio

from ..config import CA_FILE_UNREADABLE, GlobalSettings, Limits, RegistrySettings
from ..errors import (
    ConfigError,
    DigestMismatchError,
    InvalidNameError,
    LimitExceededError,
    NotFoundError,
    RegsyncError,
    RemoteServerError,
    UnsupportedError,
)
from ..safetext import shown_name
from . import referrersapi, upload
from .auth import RegistryAuth
from .credentials import Credentials, resolve_credentials
from .digest import DigestVerifier, read_hashed, sha256_digest
from .http11 import Http11Transport
from .jsondoc import TooDeepError, parse_json
from .manifest import SCHEMA1_MESSAGE, IndexManifest
from .pagination import ListingLimits, ListingTally, PageRefused, next_page
from .ratelimit import TokenBucket
from .reference import is_reference, quoted_path
from .retry import RetryPolicy
from .transport import Call, Reply, Session, looks_like_html, map_exceptions
from .types import (
    IMAGE_TYPES,
    INDEX_TYPES,
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    SCHEMA1_TYPES,
    BlobReader,
    Descriptor,
    RawManifest,
    UploadSession,
)

_log = logging.getLogger(__name__)

#: tags/list and _catalog pages: distribution caps n at 1000
PAGE_SIZE = 1000
_MAX_PAGES = 100_000
#: the best-effort DELETE of an abandoned upload gets this long, even when we are being cancelled
_ABANDON_TIMEOUT = 10.0
_OCTETS = (("Content-Type", "application/octet-stream"),)
_MANIFEST_ACCEPT = ", ".join((*MANIFEST_ACCEPT, *sorted(SCHEMA1_TYPES)))


def _pull(repository: str) -> tuple[str, ...]:
    return (f"repository:{repository}:pull",)


def _push(repository: str) -> tuple[str, ...]:
    return (f"repository:{repository}:pull,push",)


def _manifest_what(repository: str, reference: str) -> str:
    return f"manifest {repository}{'@' if ':' in reference else ':'}{reference}"


def _manifest_path(registry: str, repository: str, reference: str) -> str:
    """The manifest's URL path; a reference that is neither tag nor digest is never sent."""
    if not is_reference(reference):
        raise InvalidNameError(
            f"manifest {repository}: {shown_name(reference)} is not a valid tag or digest;"
            " not requested",
            registry=registry,
        )
    return quoted_path(repository, "manifests", reference)


class RegistryClient:
    """One registry, as configured; use `async with` (it owns the HTTP connection pool)."""

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        retry: RetryPolicy,
        timeout: float,
        credentials: Credentials | None,
        chunk_size: int = 1 << 20,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 16,
        limits: Limits | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.chunk_size = chunk_size
        self.counts: Counter[str] = Counter()
        self._retry = retry
        self._timeout = timeout
        self._credentials = credentials
        self._transport = transport
        self._max_connections = max_connections
        limits = limits or Limits()
        self._listing = ListingLimits(limits.max_tags, limits.max_listing_bytes)
        burst = max(1, int(settings.qps)) if settings.qps else 1
        self._bucket = TokenBucket(settings.qps, burst=burst)
        self._session: Session | None = None

    def __repr__(self) -> str:
        return f"RegistryClient(name={self.name!r}, url={self.settings.url!r})"

    @classmethod
    async def connect(cls, settings: RegistrySettings, global_: GlobalSettings) -> RegistryClient:
        """A client for `settings` with credentials resolved (config, docker/podman files).

        The client is not open yet: `async with await RegistryClient.connect(...) as client:`.
        """
        resolve = functools.partial(
            resolve_credentials,
            settings.host,
            username=settings.username,
            password=settings.password,
        )
        try:
            credentials = await trio.to_thread.run_sync(resolve)
        except ConfigError as exc:
            problem = str(exc)
        else:
            return cls(
                settings,
                retry=RetryPolicy.from_settings(global_.retry),
                timeout=global_.timeout,
                credentials=credentials,
                max_connections=global_.connections_per_registry,
                limits=global_.limits,
            )
        # named after the registry in the user's config; no chained context (secrets policy)
        raise ConfigError(f"credentials: {problem}", registry=settings.name)

    async def __aenter__(self) -> Self:
        verify = self._verify()
        transport = self._transport or Http11Transport(
            ssl_context=verify if isinstance(verify, ssl.SSLContext) else _unverified_context(),
            max_connections=self._max_connections,
        )
        http = httpx.AsyncClient(
            base_url=self.settings.url,
            auth=RegistryAuth(
                registry=self.name, host=self.settings.host, credentials=self._credentials,
                plain_http=self.settings.plain_http,
            ),
            # a stall longer than `timeout` is an error; waiting for a pooled connection is not
            timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 30.0), pool=None),
            limits=httpx.Limits(
                max_connections=self._max_connections,
                max_keepalive_connections=self._max_connections,
            ),
            verify=verify,  # for proxies from the environment, which httpx's transports serve
            transport=transport,
            headers={"User-Agent": "regsync/0.1"},
        )
        self._session = Session(
            http,
            base_url=self.settings.url,
            registry=self.name,
            host=self.settings.host,
            user=self._credentials.username if self._credentials else None,
            retry=self._retry,
            timeout=self._timeout,
            bucket=self._bucket,
            counts=self.counts,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            with trio.CancelScope(shield=True):
                await session.http.aclose()

    def _verify(self) -> bool | ssl.SSLContext:
        if self.settings.insecure or self.settings.plain_http:
            return False  # no TLS at all over http://: skip loading a CA bundle (~90 ms)
        try:
            return _ssl_context(self.settings.ca_file)
        except (OSError, ssl.SSLError, ValueError):
            # one answer for missing, unreadable or not PEM: it must not tell what exists
            raise ConfigError(
                f"ca_file {self.settings.ca_file!r} {CA_FILE_UNREADABLE}", registry=self.name
            ) from None

    @property
    def _s(self) -> Session:
        if self._session is None:
            raise RuntimeError("RegistryClient used outside `async with`")
        return self._session

    # --- discovery -------------------------------------------------------------------------

    async def ping(self) -> str:
        """Check that the registry answers the V2 API and accepts our credentials.

        Returns the Docker-Distribution-API-Version header (or "registry/2.0").

        Raises:
            AuthError, NetworkError, RemoteServerError: as for any request.
        """
        reply = await self._s.send(Call("GET", "/v2/", "ping", f"API check of {self.settings.url}"))
        version = reply.header("docker-distribution-api-version")
        if version is None and looks_like_html(reply.headers, reply.body):
            raise RemoteServerError(
                f"{self.settings.url}/v2/ answered an HTML page, not the registry API"
                " (proxy or login portal?)",
                registry=self.name,
                status=reply.status,
            )
        return version or "registry/2.0"

    async def list_tags(self, repository: str, *, page_size: int = PAGE_SIZE) -> list[str]:
        """All tags of `repository`, following `Link: <...>; rel="next"` pages.

        Raises:
            NotFoundError: the repository does not exist.
        """
        call = Call(
            "GET",
            quoted_path(repository, "tags", "list"),
            "tags.list",
            f"tags of {repository}",
            scopes=_pull(repository),
            repository=repository,
            params=(("n", str(page_size)),),
        )
        return await self._paginate(call, "tags")

    async def list_catalog(self, *, page_size: int | None = None) -> list[str]:
        """All repository names the registry lists (many registries restrict `_catalog`);
        `page_size` defaults to PAGE_SIZE, read at call time."""
        names: list[str] = []
        async with aclosing(self.catalog_pages(page_size=page_size)) as pages:
            async for page in pages:
                names.extend(page)
        return names

    def catalog_pages(self, *, page_size: int | None = None) -> AsyncGenerator[list[str], None]:
        """The catalog one page at a time, so a walk over many repositories holds one page."""
        call = Call(
            "GET",
            "/v2/_catalog",
            "catalog.list",
            "repository catalog",
            scopes=("registry:catalog:*",),
            params=(("n", str(page_size or PAGE_SIZE)),),
        )
        return self._pages(call, "repositories")

    async def _paginate(self, call: Call, field: str) -> list[str]:
        names: list[str] = []
        async with aclosing(self._pages(call, field)) as pages:
            async for page in pages:
                names.extend(page)
        return names

    async def _pages(self, call: Call, field: str) -> AsyncGenerator[list[str], None]:
        """Every page's names, within `global.limits`; a Link off the registry's origin (or
        off the listing's path) is refused before anything is fetched from it."""
        seen: set[str] = set()
        tally = ListingTally(self._listing)
        path = call.url
        while True:
            # one byte over what is left, so a page past the bound is seen as such
            reply = await self._s.send(replace(call, body_limit=tally.bytes_left))
            following = reply.links.get("next", {}).get("url")
            try:
                tally.add_body(len(reply.body))
                page = self._names(reply, field, call.what)
                tally.add_names(len(page), has_next=bool(following))
                target = next_page(self.settings.url, path, following) if following else None
            except PageRefused as exc:
                raise self._refused(call.what, exc) from None
            yield page
            if target is None:
                return
            if target in seen or len(seen) >= _MAX_PAGES:
                raise RemoteServerError(
                    f"{call.what}: the registry's Link pagination loops", registry=self.name
                )
            seen.add(target)
            call = replace(call, url=target, params=())

    def _refused(self, what: str, exc: PageRefused) -> RegsyncError:
        if exc.limit is None:
            return RemoteServerError(f"{what}: {exc}", registry=self.name)
        return LimitExceededError(
            f"{what}: {exc}; stopped there (raise global.limits.{exc.limit} if the repository"
            " really is that large)",
            registry=self.name,
        )

    def _names(self, reply: Reply, field: str, what: str) -> list[str]:
        try:
            document = parse_json(reply.body)
        except TooDeepError as exc:
            raise RemoteServerError(f"{what}: {exc}", registry=self.name) from None
        except ValueError:
            document = None
        values = document.get(field) if isinstance(document, dict) else "invalid"
        if values is None:  # distribution sends "tags": null for a repository without tags
            return []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise RemoteServerError(
                f"{what}: the registry's answer is not a JSON object with a {field!r} list",
                registry=self.name,
                status=reply.status,
            )
        return values

    # --- manifests -------------------------------------------------------------------------

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The manifest's descriptor without a GET (free on Docker Hub's quota); None if absent.

        A registry that sends no Docker-Content-Digest is answered by a GET (counted as
        manifest.head.fallback), since a digest is the whole point.
        """
        what = _manifest_what(repository, reference)
        call = Call(
            "HEAD",
            _manifest_path(self.name, repository, reference),
            "manifest.head",
            what,
            scopes=_pull(repository),
            repository=repository,
            headers=(("Accept", _MANIFEST_ACCEPT),),
        )
        try:
            reply = await self._s.send(call)
        except NotFoundError:
            return None
        digest = reply.header("docker-content-digest")
        if not digest:
            self.counts["manifest.head.fallback"] += 1
            manifest = await self.get_manifest(repository, reference)
            return Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))
        if ":" in reference and digest != reference:
            raise DigestMismatchError(
                f"{what}: the registry says its digest is {digest}", registry=self.name
            )
        media_type = _media_type(reply.header("content-type"))
        return Descriptor(media_type, digest, int(reply.header("content-length") or 0))

    async def get_manifest(self, repository: str, reference: str) -> RawManifest:
        """The manifest exactly as served, its digest verified.

        Raises:
            UnsupportedError: larger than 4 MiB, or Docker schema 1.
            DigestMismatchError: the bytes do not hash to the digest asked for or announced.
        """
        what = _manifest_what(repository, reference)
        call = Call(
            "GET",
            _manifest_path(self.name, repository, reference),
            "manifest.get",
            what,
            scopes=_pull(repository),
            repository=repository,
            headers=(("Accept", _MANIFEST_ACCEPT),),
            body_limit=MAX_MANIFEST_BYTES,
            metered=True,
        )
        reply = await self._s.send(call)
        if len(reply.body) > MAX_MANIFEST_BYTES:
            raise UnsupportedError(f"{what}: manifest larger than 4 MiB", registry=self.name)
        media_type = self._manifest_type(reply, what)
        expected = reference if ":" in reference else reply.header("docker-content-digest")
        digest = self._verified(reply.body, expected, what)
        return RawManifest(raw=reply.body, media_type=media_type, digest=digest)

    def _manifest_type(self, reply: Reply, what: str) -> str:
        served = _media_type(reply.header("content-type"))
        if served in IMAGE_TYPES or served in INDEX_TYPES:
            return served
        try:
            document = parse_json(reply.body)
        except ValueError:
            document = {}
        if not isinstance(document, dict):
            document = {}
        if served in SCHEMA1_TYPES or document.get("schemaVersion") == 1:
            raise UnsupportedError(f"{what}: {SCHEMA1_MESSAGE}", registry=self.name)
        declared = document.get("mediaType")
        return declared if isinstance(declared, str) and declared else served

    def _verified(self, body: bytes, expected: str | None, what: str) -> str:
        if not expected:
            return sha256_digest(body)
        try:
            verifier = DigestVerifier.for_digest(expected)
        except ValueError as exc:
            raise RemoteServerError(f"{what}: {exc}", registry=self.name) from None
        verifier.update(body)
        if verifier.digest != expected:
            raise DigestMismatchError(
                f"{what}: the registry served bytes hashing to {verifier.digest}, not {expected}",
                registry=self.name,
            )
        return expected

    async def put_manifest(self, repository: str, reference: str, manifest: RawManifest) -> None:
        """Store `manifest` under a tag or its digest; the registry must echo the same digest."""
        what = _manifest_what(repository, reference)
        if manifest.digest.startswith("sha256:") and sha256_digest(manifest.raw) != manifest.digest:
            raise DigestMismatchError(
                f"{what}: refusing to push bytes that do not hash to {manifest.digest}",
                registry=self.name,
            )
        call = Call(
            "PUT",
            _manifest_path(self.name, repository, reference),
            "manifest.put",
            what,
            scopes=_push(repository),
            repository=repository,
            headers=(("Content-Type", manifest.media_type),),
            content=manifest.raw,
        )
        reply = await self._s.send(call)
        echoed = reply.header("docker-content-digest")
        if echoed and echoed != manifest.digest:
            raise DigestMismatchError(
                f"{what}: the registry stored the manifest as {echoed}, not {manifest.digest}",
                registry=self.name,
            )

    async def list_referrers(
        self, repository: str, digest: str
    ) -> tuple[RawManifest, IndexManifest] | None:
        """The OCI 1.1 Referrers API's index of `digest`'s referrers; None when the registry
        has no such API (referrersapi.py)."""
        try:
            reply = await self._s.send(referrersapi.referrers_call(repository, digest))
        except (NotFoundError, UnsupportedError):
            return None
        return referrersapi.referrers_answer(reply, registry=self.name)

    # --- blobs -----------------------------------------------------------------------------

    async def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size if `repository` has it, else None."""
        call = Call(
            "HEAD",
            quoted_path(repository, "blobs", digest),
            "blob.head",
            f"blob {digest} in {repository}",
            scopes=_pull(repository),
            repository=repository,
            follow_redirects=True,
        )
        try:
            reply = await self._s.send(call)
        except NotFoundError:
            return None
        return int(reply.header("content-length") or 0)

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; False when the registry started an upload instead (which is
        cancelled here, so the caller simply uploads)."""
        session = await self.start_upload(repository, digest, mount_from=from_repository)
        if session is None:
            return True
        await self.cancel_upload(session)
        return False

    async def start_upload(
        self, repository: str, digest: str, *, mount_from: str | None
    ) -> UploadSession | None:
        """One POST: a mount of `digest` from `mount_from` (201: None, the blob is in
        `repository` now) or, as the registry's answer to a mount it cannot do or a plain
        start, an upload session (202)."""
        reply = await self._s.send(upload.start_call(repository, digest, mount_from))
        if mount_from is not None and reply.status == 201:
            return None
        location = reply.header("location")
        if not location:
            raise RemoteServerError(
                f"blob upload to {repository}: the registry sent no upload Location",
                registry=self.name,
                status=reply.status,
            )
        minimum = upload.chunk_min_length(reply.header("oci-chunk-min-length"))
        return UploadSession(repository, location, minimum)

    async def cancel_upload(self, session: UploadSession) -> None:
        await self._abandon(session.location, session.repository)

    @asynccontextmanager
    async def open_blob(self, repository: str, digest: str) -> AsyncIterator[BlobReader]:
        """Stream a blob (redirects followed; credentials never follow to another host).

        Getting the answer is retried; the body is not: the engine retries whole transfers.
        """
        call = Call(
            "GET",
            quoted_path(repository, "blobs", digest),
            "blob.get",
            f"blob {digest} in {repository}",
            scopes=_pull(repository),
            repository=repository,
            follow_redirects=True,
            # layers are compressed already; a transparently re-encoded body would also hide
            # the true size
            headers=(("Accept-Encoding", "identity"),),
        )
        response = await self._s.open_stream(call)
        try:
            yield _BlobStream(response, self._s, self.chunk_size, call.what)
        finally:
            with trio.CancelScope(shield=True):
                await response.aclose()

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        size: int | None,
        chunks: AsyncIterator[bytes],
        *,
        session: UploadSession | None = None,
        chunked: bool = False,
    ) -> None:
        """Upload into `session` (else a new one), committing only if the bytes hash to `digest`
        and number `size`; on a mismatch or any failure the session is deleted, never committed.

        Size known: small blobs (one chunk) are read and checked, then sent in a retried PUT;
        larger ones stream in one PUT whose last chunk waits for the digest check, or with
        `chunked` go as PATCH parts, then an empty PUT. Size unknown: one streamed PATCH, then
        the PUT.

        Raises:
            DigestMismatchError: the bytes are not what `digest`/`size` promise.
            UploadRefusedError: the registry refused the body in one piece (retry `chunked`).
        """
        try:
            verifier = DigestVerifier.for_digest(digest)
        except ValueError as exc:
            raise DigestMismatchError(f"cannot upload blob: {exc}", registry=self.name) from None
        if session is None:
            session = await self.start_upload(repository, digest, mount_from=None)
            assert session is not None  # a plain start always answers with a session
        check = functools.partial(self._check_upload, repository=repository, digest=digest,
                                  size=size)
        try:
            if size is not None and size <= self.chunk_size:  # one piece, even `chunked`
                body = await read_hashed(chunks, verifier, size)
                check(verifier)
                await self._commit(session, digest, body)
            elif size is not None and not chunked:
                await upload.put_streamed(self._s, session, digest, size, chunks, verifier, check)
            elif size is not None:
                session = await upload.patch_parts(
                    self._s, session, digest, size, chunks, verifier, check
                )
                check(verifier)
                await self._commit(session, digest, b"")
            else:
                session = await self._patch_stream(session, digest, chunks, verifier, check)
                check(verifier)
                await self._commit(session, digest, b"")
        except BaseException:
            await self._abandon(session.location, repository)
            raise

    async def _patch_stream(
        self, session: UploadSession, digest: str, chunks: AsyncIterator[bytes],
        verifier: DigestVerifier, check: upload.Check,
    ) -> UploadSession:
        """The whole body in one streamed PATCH (size unknown: no Content-Length to promise)."""
        repository = session.repository
        patch = Call(
            "PATCH",
            session.location,
            "blob.upload.chunk",
            f"upload of blob {digest} to {repository}",
            scopes=_push(repository),
            repository=repository,
            headers=_OCTETS,
        )
        reply = await self._s.send_streaming(patch, upload.hashed(chunks, verifier, None, check))
        # the session's state moved on with the PATCH: only the new Location can delete it
        location = reply.header("location") or session.location
        return replace(session, location=location)

    async def _commit(self, session: UploadSession, digest: str, body: bytes) -> None:
        repository = session.repository
        call = Call(
            "PUT",
            session.location,
            "blob.upload",
            f"upload of blob {digest} to {repository}",
            scopes=_push(repository),
            repository=repository,
            headers=_OCTETS,
            params=(("digest", digest),),
            content=body,
        )
        try:
            reply = await self._s.send(call)
        except NotFoundError:
            # An earlier attempt may have committed with its answer lost on the way (reset,
            # timeout): the retry then finds the session gone. The registry checked the digest
            # when it committed, so a blob that is there now is the upload done.
            if await self.head_blob(repository, digest) is not None:
                return
            raise
        upload.echoed(reply.header("docker-content-digest"), digest, repository, self.name)

    def _check_upload(
        self, verifier: DigestVerifier, *, repository: str, digest: str, size: int | None
    ) -> None:
        if verifier.digest == digest and (size is None or verifier.size == size):
            return
        promised = f"{digest} ({size} bytes)" if size is not None else digest
        # No registry named: this one did nothing wrong, the bytes handed in did. The caller
        # knows where they came from (the engine names the source registry).
        raise DigestMismatchError(
            f"blob upload to {repository} abandoned, nothing committed: the source promised"
            f" {promised} but sent {verifier.size} bytes hashing to {verifier.digest}",
        )

    async def _abandon(self, location: str, repository: str) -> None:
        """Best effort DELETE of an upload session, even while being cancelled."""
        call = Call(
            "DELETE",
            location,
            "blob.upload.cancel",
            f"cancel of an upload to {repository}",
            scopes=_push(repository),
            repository=repository,
        )
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + _ABANDON_TIMEOUT
            try:
                await self._s.send_once(call)
            except RegsyncError as exc:
                _log.debug("registry %r: upload not cancelled: %s", self.name, exc)


class _BlobStream:
    """An open blob download (the `BlobReader` the engine reads)."""

    def __init__(
        self, response: httpx.Response, session: Session, chunk_size: int, what: str
    ) -> None:
        length = response.headers.get("content-length")
        self.size: int | None = int(length) if length and length.isdigit() else None
        self._response = response
        self._session = session
        self._chunk_size = chunk_size
        self._what = what

    async def chunks(self) -> AsyncIterator[bytes]:
        s = self._session
        with map_exceptions(
            registry=s.registry, host=s.host, timeout=s.timeout, what=self._what
        ):
            async for chunk in self._response.aiter_bytes(self._chunk_size):
                yield chunk


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip()


@functools.cache
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """One context per CA bundle for the whole process: loading certificates costs ~90 ms."""
    if ca_file is None:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cafile=ca_file)


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    """For `insecure: true`: TLS without certificate or host name checks."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # loads no CA bundle: none is used
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
