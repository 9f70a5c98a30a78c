"""The Registry HTTP API V2 backend of the port: a thin facade over one module per job.

`RegistryClient` owns one registry's connection pool and `Session` (session.py: QPS, scopes,
retries, timeouts, error mapping) and hands each port operation to the module doing that job:
listing.py (tags, catalog), manifests.py (HEAD/GET/PUT, referrers), deletes.py (prune's
DELETEs), download.py (blob HEAD and GET) and upload.py (mounts, upload sessions, the bytes). Nothing here sees raw httpx errors.
Names are data, never paths: every URL is built by `quoted_path` from percent-encoded parts, a
reference that is not a tag or digest is refused before any request (`InvalidNameError`), and a
listing is bounded by `global.limits` and follows only same-origin Links (registry/pagination.py).
Open one through registry/factory.py's `open_port`.

Request counters (`counts`, one per HTTP request sent, retries included) are keyed: ping,
tags.list, catalog.list, manifest.head, manifest.head.fallback (a HEAD without digest header,
answered by a GET), manifest.get, manifest.put, blob.head, blob.mount, blob.get,
blob.upload.start, blob.upload.chunk, blob.upload (the committing PUT, streamed with the body
when the size is known), blob.upload.cancel, referrers.list (the OCI 1.1 Referrers API),
manifest.delete.tag and manifest.delete (prune: deletes.py), retry.
"""

from __future__ import annotations

import functools
import ssl
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

import httpx
import trio

from ..base.errors import ConfigError, RemoteServerError
from ..oci.manifest import IndexManifest
from ..oci.port import BlobReader
from ..oci.types import Descriptor, RawManifest, UploadSession
from ..settings import CA_FILE_UNREADABLE, GlobalSettings, Limits, RegistrySettings
from . import deletes, download, listing, manifests, upload
from .answers import looks_like_html
from .auth import RegistryAuth
from .credentials import Credentials, resolve_credentials
from .http11 import Http11Transport
from .pagination import ListingLimits
from .ratelimit import TokenBucket
from .retry import RetryPolicy
from .session import Call, Session


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

    # --- discovery ---------------------------------------------------------------------------

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

    async def list_tags(self, repository: str, *, page_size: int = listing.PAGE_SIZE) -> list[str]:
        """All tags of `repository`, every page (listing.py); NotFoundError if it is absent."""
        return await listing.list_tags(self._s, repository, self._listing, page_size=page_size)

    async def list_catalog(self, *, page_size: int | None = None) -> list[str]:
        """All repository names the registry lists (many registries restrict `_catalog`)."""
        return await listing.list_catalog(self._s, self._listing, page_size=page_size)

    def catalog_pages(self, *, page_size: int | None = None) -> AsyncGenerator[list[str], None]:
        """The catalog one page at a time (a glob's walk holds one page, not the catalog)."""
        return listing.catalog_pages(self._s, self._listing, page_size=page_size)

    # --- manifests (manifests.py) ----------------------------------------------------------

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        return await manifests.head_manifest(self._s, repository, reference)

    async def get_manifest(self, repository: str, reference: str) -> RawManifest:
        return await manifests.get_manifest(self._s, repository, reference)

    async def put_manifest(self, repository: str, reference: str, manifest: RawManifest) -> None:
        await manifests.put_manifest(self._s, repository, reference, manifest)

    async def delete_tag(self, repository: str, tag: str) -> bool:
        """Remove one tag by name (OCI 1.1); False when the registry deletes only by digest."""
        return await deletes.delete_tag(self._s, repository, tag)

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """Remove a manifest and every tag pointing at it (deletes.py)."""
        await deletes.delete_manifest(self._s, repository, digest)

    async def list_referrers(
        self, repository: str, digest: str
    ) -> tuple[RawManifest, IndexManifest] | None:
        return await manifests.list_referrers(self._s, repository, digest)

    # --- blobs (download.py, upload.py) ----------------------------------------------------

    async def head_blob(self, repository: str, digest: str) -> int | None:
        return await download.head_blob(self._s, repository, digest)

    def open_blob(self, repository: str, digest: str) -> AbstractAsyncContextManager[BlobReader]:
        return download.open_blob(self._s, repository, digest, self.chunk_size)

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
        return await upload.start_upload(self._s, repository, digest, mount_from=mount_from)

    async def cancel_upload(self, session: UploadSession) -> None:
        await upload.abandon(self._s, session.location, session.repository)

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
        await upload.upload_blob(self._s, repository, digest, size, chunks, session=session,
                                 chunk_size=self.chunk_size, chunked=chunked)


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
