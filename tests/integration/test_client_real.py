"""RegistryClient against the real registry (distribution 2.8.2): every operation the engine uses.

Witnesses are independent of the client: the registry's access log for request counts, the test
bed's raw-httpx helpers (`fetch_blob`, `manifest_digest`) for what was stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator

import pytest
import trio
from regsync.daemon.base.errors import AuthError, DigestMismatchError, NetworkError, NotFoundError
from regsync.daemon.oci.types import RawManifest
from regsync.daemon.registry.client import RegistryClient
from regsync.daemon.registry.credentials import Credentials
from regsync.daemon.registry.retry import RetryPolicy
from regsync.daemon.settings import RegistrySettings
from support.images import (
    DOCKER_MANIFEST,
    fetch_blob,
    fetch_manifest,
    manifest_digest,
    push_image,
    random_layer,
    sha256,
    stream_layer,
)
from support.registry import RegistryServer, free_port

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=2, initial=0.01, maximum=0.01)


def client_for(
    server: RegistryServer | str, *, name: str = "src", password: str | None = None
) -> RegistryClient:
    url = server if isinstance(server, str) else server.url
    credentials = None
    if isinstance(server, RegistryServer) and server.credentials is not None:
        user, secret = server.credentials
        credentials = Credentials(user, password if password is not None else secret)
    return RegistryClient(
        RegistrySettings(name=name, url=url),
        retry=FAST_RETRY,
        timeout=30.0,
        credentials=credentials,
        chunk_size=64 * 1024,
    )


async def agen(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
        await trio.lowlevel.checkpoint()


@pytest.mark.parametrize("kind", ["registry", "basic_registry", "token_registry"])
async def test_ping_with_each_auth_mode(kind: str, request: pytest.FixtureRequest) -> None:
    server: RegistryServer = request.getfixturevalue(kind)
    async with client_for(server) as client:
        assert await client.ping() == "registry/2.0"


async def test_wrong_password_is_an_auth_error_without_the_password(
    basic_registry: RegistryServer,
) -> None:
    async with client_for(basic_registry, password="not-the-password-xyz") as client:
        with pytest.raises(AuthError) as caught:
            await client.ping()
    assert "alice" in str(caught.value)
    assert "not-the-password-xyz" not in str(caught.value)


async def test_wrong_password_on_token_registry(token_registry: RegistryServer) -> None:
    async with client_for(token_registry, password="wrong-secret-123") as client:
        with pytest.raises(AuthError) as caught:
            await client.list_tags("some/repo")
    assert "wrong-secret-123" not in str(caught.value)


async def test_unreachable_port_names_the_registry() -> None:
    async with client_for(f"http://127.0.0.1:{free_port()}", name="mirror") as client:
        with pytest.raises(NetworkError) as caught:
            await client.ping()
    assert "'mirror'" in str(caught.value)
    assert "connection refused" in str(caught.value)
    assert "gave up" in str(caught.value) and "2 attempts" in str(caught.value)


async def test_tags_and_catalog_follow_pagination(registry: RegistryServer) -> None:
    tags = ["a1", "b2", "c3", "d4", "e5"]
    for tag in tags:
        push_image(registry, "lib/app", tag, layers=[random_layer(100, tag)])
    for repo in ("lib/b", "lib/c"):
        push_image(registry, repo, "x", layers=[random_layer(100, repo)])
    async with client_for(registry) as client:
        # distribution 2.8 ignores n on tags/list (it pages only the catalog)
        assert sorted(await client.list_tags("lib/app", page_size=2)) == tags
        assert await client.list_catalog(page_size=1) == ["lib/app", "lib/b", "lib/c"]
        pages = client.counts["catalog.list"]
    assert pages >= 3
    assert registry.count("GET", r"/v2/_catalog") == pages


async def test_tags_of_missing_repository(registry: RegistryServer) -> None:
    async with client_for(registry) as client:
        with pytest.raises(NotFoundError, match="repository 'no/such' not found on registry"):
            await client.list_tags("no/such")


async def test_manifest_head_get_put_round_trip(token_registry: RegistryServer) -> None:
    digest = push_image(token_registry, "src/app", "1.0", layers=[random_layer(1000, 1)])
    async with client_for(token_registry) as client:
        head = await client.head_manifest("src/app", "1.0")
        assert head is not None and head.digest == digest
        assert head.media_type == DOCKER_MANIFEST
        assert await client.head_manifest("src/app", "2.0") is None
        manifest = await client.get_manifest("src/app", "1.0")
        assert manifest.digest == digest and manifest.media_type == DOCKER_MANIFEST
        assert (await client.get_manifest("src/app", digest)).raw == manifest.raw
        # mount the blobs, then push the manifest under a new tag in another repository
        for layer in json.loads(manifest.raw)["layers"] + [json.loads(manifest.raw)["config"]]:
            assert await client.mount_blob("dst/app", layer["digest"], "src/app")
        await client.put_manifest("dst/app", "copied", manifest)
        assert client.counts["manifest.get"] == 2
    assert manifest_digest(token_registry, "dst/app", "copied") == digest
    assert fetch_manifest(token_registry, "dst/app", "copied")[0] == manifest.raw


async def test_put_manifest_refuses_bytes_not_matching_digest(registry: RegistryServer) -> None:
    digest = push_image(registry, "a", "1", layers=[random_layer(10, 2)])
    async with client_for(registry) as client:
        manifest = await client.get_manifest("a", "1")
        forged = RawManifest(manifest.raw + b" ", manifest.media_type, digest)
        with pytest.raises(DigestMismatchError):
            await client.put_manifest("a", "2", forged)
    assert manifest_digest(registry, "a", "2") is None


async def test_blob_upload_monolithic_and_download(basic_registry: RegistryServer) -> None:
    data = random_layer(10_000, "small")
    async with client_for(basic_registry) as client:
        await client.upload_blob("r", sha256(data), len(data), agen(iter([data[:10], data[10:]])))
        assert client.counts["blob.upload"] == 1 and client.counts["blob.upload.chunk"] == 0
        assert await client.head_blob("r", sha256(data)) == len(data)
        async with client.open_blob("r", sha256(data)) as blob:
            assert blob.size == len(data)
            received = b"".join([chunk async for chunk in blob.chunks()])
    assert received == data


async def test_blob_upload_streamed_20_mb(registry: RegistryServer) -> None:
    size = 20 * 1024 * 1024
    digest = hashlib.sha256()
    for chunk in stream_layer(size, "big"):
        digest.update(chunk)
    expected = "sha256:" + digest.hexdigest()
    async with client_for(registry) as client:
        await client.upload_blob("big/one", expected, size, agen(stream_layer(size, "big")))
        # one POST and one PUT streaming the body with Content-Length: two round trips
        assert client.counts["blob.upload.chunk"] == 0 and client.counts["blob.upload"] == 1
        assert await client.head_blob("big/one", expected) == size
    assert sha256(fetch_blob(registry, "big/one", expected)) == expected
    assert registry.count("PATCH", r"/blobs/uploads/") == 0
    assert registry.count("PUT", r"/blobs/uploads/", status=201) == 1


@pytest.mark.parametrize("size", [1000, 200_000], ids=["monolithic", "streamed"])
async def test_upload_with_wrong_digest_commits_nothing(
    registry: RegistryServer, size: int
) -> None:
    data = random_layer(size, "payload")
    claimed = sha256(b"something else")
    async with client_for(registry) as client:
        with pytest.raises(DigestMismatchError) as caught:
            await client.upload_blob("r", claimed, size, agen(iter([data])))
        assert claimed in str(caught.value) and sha256(data) in str(caught.value)
        assert await client.head_blob("r", claimed) is None
        assert await client.head_blob("r", sha256(data)) is None
    # a streamed PUT may have begun, but its body never completed: nothing was committed
    assert registry.count("PUT", r"/blobs/uploads/", status=201) == 0
    assert registry.count("PUT", r"/blobs/", status=201) == 0


async def test_streamed_upload_with_missing_bytes_is_abandoned(registry: RegistryServer) -> None:
    data = random_layer(300_000, "short")
    async with client_for(registry) as client:
        with pytest.raises(DigestMismatchError, match="300001 bytes"):
            await client.upload_blob("r", sha256(data), len(data) + 1, agen(iter([data])))
        assert client.counts["blob.upload.cancel"] == 1
        assert await client.head_blob("r", sha256(data)) is None
    assert registry.count("DELETE", r"/blobs/uploads/") == 1
    assert registry.count("PUT", r"/blobs/uploads/", status=201) == 0


async def test_mount_from_unknown_repository_starts_no_upload(registry: RegistryServer) -> None:
    data = random_layer(500, "m")
    async with client_for(registry) as client:
        assert not await client.mount_blob("dst", sha256(data), "nowhere")
        assert client.counts["blob.upload.cancel"] == 1
        await client.upload_blob("src", sha256(data), len(data), agen(iter([data])))
        assert await client.mount_blob("dst", sha256(data), "src")
        assert await client.head_blob("dst", sha256(data)) == len(data)


async def test_missing_blob_is_not_found(registry: RegistryServer) -> None:
    push_image(registry, "r", "1", layers=[random_layer(10, 3)])
    async with client_for(registry) as client:
        with pytest.raises(NotFoundError):
            async with client.open_blob("r", sha256(b"absent")):
                pass


async def test_more_requests_than_connections_all_get_their_token(
    token_registry: RegistryServer,
) -> None:
    """Every request starts before the first token is known, so all of them are answered 401
    and wait for the one token fetch, which needs a connection of its own: none may sit on
    one while it waits."""
    push_image(token_registry, "app", "1.0", layers=[random_layer(1000, seed=1)])
    user, secret = token_registry.credentials or ("", "")
    client = RegistryClient(
        RegistrySettings(name="src", url=token_registry.url),
        retry=FAST_RETRY,
        timeout=30.0,
        credentials=Credentials(user, secret),
        max_connections=2,
    )
    digests: list[str | None] = []
    async with client:

        async def head() -> None:
            found = await client.head_manifest("app", "1.0")
            digests.append(found.digest if found else None)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for _ in range(8):
                    nursery.start_soon(head)
    assert len(digests) == 8 and None not in digests and len(set(digests)) == 1
