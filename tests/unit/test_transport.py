"""Error mapping (tables over statuses, bodies and httpx exceptions) and the client's request rules
behind `httpx.MockTransport`: pagination, retries in virtual time, quota, digests, uploads."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest
import trio
from regsync.daemon.base.errors import (
    AuthError,
    DigestMismatchError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    RegistryError,
    RegsyncError,
    RemoteServerError,
    UnsupportedError,
)
from regsync.daemon.oci.digest import sha256_digest
from regsync.daemon.oci.types import DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED
from regsync.daemon.registry.answers import (
    error_from_response,
    parse_error_body,
    parse_retry_after,
)
from regsync.daemon.registry.boundary import map_exceptions
from regsync.daemon.registry.client import RegistryClient
from regsync.daemon.registry.credentials import Credentials
from regsync.daemon.registry.retry import RetryPolicy
from regsync.daemon.settings import RegistrySettings

SECRET_URL = "https://alice:hunter2@reg.example/v2/a/b/manifests/1?X-Amz-Signature=s3cr3t"


def answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    content = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    assert isinstance(content, bytes)
    return httpx.Response(
        status, content=content, headers=headers, request=httpx.Request("GET", SECRET_URL)
    )


def errors(code: str, message: str = "msg") -> dict[str, object]:
    return {"errors": [{"code": code, "message": message, "detail": {"k": "v"}}]}


@pytest.mark.parametrize(
    ("response", "kind", "temporary", "fragment"),
    [
        (answer(401, errors("UNAUTHORIZED")), AuthError, False, "credentials of user 'alice'"),
        (answer(403, errors("DENIED")), AuthError, False, "permission denied for user 'alice'"),
        (
            answer(404, errors("NAME_UNKNOWN")),
            NotFoundError,
            False,
            "repository 'a/b' not found on registry 'hub'",
        ),
        (answer(404), NotFoundError, False, "manifest a/b:1 not found on registry 'hub'"),
        (answer(400, errors("MANIFEST_BLOB_UNKNOWN")), NotFoundError, False, "lacks a blob"),
        (answer(429, errors("TOOMANYREQUESTS")), RateLimitError, True, "too many requests"),
        (answer(503, errors("UNAVAILABLE", "down")), RemoteServerError, True, "UNAVAILABLE: down"),
        (answer(500, b"boom"), RemoteServerError, True, "HTTP 500 boom"),
        (answer(400, errors("DIGEST_INVALID")), DigestMismatchError, False, "DIGEST_INVALID"),
        (answer(405, errors("UNSUPPORTED")), UnsupportedError, False, "does not support"),
        (answer(400, errors("TAG_INVALID", "bad tag")), RegistryError, False, "TAG_INVALID: bad"),
        (answer(200, b"<!DOCTYPE html><p>login</p>"), RemoteServerError, False, "HTML page"),
        (
            answer(502, b"<html>", **{"content-type": "text/html"}),
            RemoteServerError,
            True,
            "proxy or login portal?",
        ),
    ],
)
def test_error_from_response(
    response: httpx.Response, kind: type[RegistryError], temporary: bool, fragment: str
) -> None:
    error = error_from_response(response, "hub", "manifest a/b:1", user="alice", repository="a/b")
    assert type(error) is kind
    assert error.temporary is temporary
    assert fragment in str(error)
    assert error.status == response.status_code
    assert "hunter2" not in str(error) and "s3cr3t" not in str(error)


def test_html_error_names_the_redacted_url() -> None:
    error = error_from_response(answer(403, b"<html>"), "hub", "x")
    assert "https://reg.example/v2/a/b/manifests/1" in str(error)


def test_anonymous_401_says_credentials_are_missing() -> None:
    error = error_from_response(answer(401), "hub", "tags of a")
    assert isinstance(error, AuthError)
    assert "no credentials are configured" in str(error)


def test_rate_limit_carries_retry_after() -> None:
    error = error_from_response(answer(429, **{"Retry-After": "12"}), "hub", "x")
    assert getattr(error, "retry_after", None) == 12.0


def test_docker_hub_quota_exhausted_is_not_temporary() -> None:
    response = answer(429, errors("TOOMANYREQUESTS"), **{"RateLimit-Remaining": "0;w=21600"})
    error = error_from_response(response, "hub", "manifest a:1")
    assert isinstance(error, RateLimitError) and not error.temporary
    assert "Docker Hub pull quota exhausted (window 21600s); retry later or log in" in str(error)


def test_error_bodies_are_capped() -> None:
    huge = json.dumps(errors("X", "m" * 200_000)).encode()
    assert parse_error_body(huge) == ()  # cut at 64 KiB: no longer JSON
    assert parse_error_body(b"[1]") == ()
    (entry,) = parse_error_body(json.dumps(errors("blob_unknown", "x" * 1000)).encode())
    assert entry.code == "BLOB_UNKNOWN" and len(entry.message) == 300


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:45 GMT", now=now) == 45.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def chained(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("raised", "fragment", "temporary"),
    [
        (httpx.ReadTimeout("t"), "reg:5000 stalled: receiving from it timed out after 60s", True),
        (httpx.ConnectTimeout("t"), "connecting to reg:5000 timed out after 30s", True),
        (
            chained(httpx.ConnectError("x"), ConnectionRefusedError(111, "refused")),
            "cannot connect to reg:5000: connection refused",
            True,
        ),
        (
            chained(httpx.ConnectError("x"), socket.gaierror(-2, "Name or service not known")),
            "name does not resolve",
            True,
        ),
        (
            chained(httpx.ConnectError(""), ssl.SSLCertVerificationError(1, "verify failed")),
            "set ca_file",
            False,
        ),
        (httpx.RemoteProtocolError("peer closed"), "connection to reg:5000 broke: peer", True),
        (httpx.ReadError(""), "broke: ReadError", True),
    ],
)
def test_map_exceptions(raised: Exception, fragment: str, temporary: bool) -> None:
    with (
        pytest.raises(NetworkError) as caught,
        map_exceptions(registry="hub", host="reg:5000", timeout=60.0),
    ):
        raise raised
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("registry 'hub': ")
    assert caught.value.temporary is temporary
    assert caught.value.__cause__ is None


# --- the client behind a MockTransport ----------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]
FAST = RetryPolicy(max_attempts=3, initial=1.0, maximum=10.0, jitter=0.0)


def make_client(
    handler: Handler,
    *,
    qps: float | None = None,
    credentials: Credentials | None = None,
    timeout: float = 60.0,
) -> RegistryClient:
    settings = RegistrySettings(name="hub", url="https://reg.example", qps=qps)
    return RegistryClient(
        settings,
        retry=FAST,
        timeout=timeout,
        credentials=credentials,
        transport=httpx.MockTransport(handler),
        chunk_size=8,
    )


class Recorder:
    """Answers from a list (the last repeats) and records what was asked."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


async def test_tags_follow_three_pages_of_links() -> None:
    pages = {
        "/v2/a/tags/list?n=2": (["1", "2"], '</v2/a/tags/list?n=2&last=2>; rel="next"'),
        "/v2/a/tags/list?n=2&last=2": (["3", "4"], '</v2/a/tags/list?n=2&last=4>; rel="next"'),
        "/v2/a/tags/list?n=2&last=4": (["5"], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        tags, link = pages[request.url.raw_path.decode()]
        assert request.extensions["regsync.scopes"] == ("repository:a:pull",)
        return httpx.Response(
            200, json={"name": "a", "tags": tags}, headers={"Link": link} if link else {}
        )

    async with make_client(handler) as client:
        assert await client.list_tags("a", page_size=2) == ["1", "2", "3", "4", "5"]
        assert client.counts["tags.list"] == 3


async def test_looping_links_are_refused() -> None:
    recorder = Recorder(
        httpx.Response(
            200, json={"tags": ["x"]}, headers={"Link": '</v2/a/tags/list?last=x>; rel="next"'}
        )
    )
    async with make_client(recorder) as client:
        with pytest.raises(RemoteServerError, match="pagination loops"):
            await client.list_tags("a")
    assert len(recorder.requests) == 2


async def test_null_tags_is_an_empty_list() -> None:
    async with make_client(Recorder(httpx.Response(200, json={"tags": None}))) as client:
        assert await client.list_tags("a") == []


async def test_5xx_is_retried_in_virtual_time(autojump_clock: trio.abc.Clock) -> None:
    recorder = Recorder(
        httpx.Response(503),
        httpx.Response(502),
        httpx.Response(200, headers={"Docker-Distribution-API-Version": "registry/2.0"}),
    )
    start = trio.current_time()
    async with make_client(recorder) as client:
        assert await client.ping() == "registry/2.0"
        assert client.counts["ping"] == 3 and client.counts["retry"] == 2
    assert trio.current_time() - start == pytest.approx(1.0 + 2.0)


async def test_429_waits_as_long_as_retry_after(autojump_clock: trio.abc.Clock) -> None:
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "9"}), httpx.Response(200))
    start = trio.current_time()
    async with make_client(recorder) as client:
        await client.ping()
    assert trio.current_time() - start == pytest.approx(9.0)


async def test_stalled_registry_times_out(autojump_clock: trio.abc.Clock) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await trio.sleep(3600)
        return httpx.Response(200)

    async with make_client(handler, timeout=5.0) as client:  # type: ignore[arg-type]
        with pytest.raises(NetworkError, match="did not answer within 5s") as caught:
            await client.ping()
    assert "after 3 attempts" in str(caught.value)


async def test_qps_limit_spaces_requests(autojump_clock: trio.abc.Clock) -> None:
    start = trio.current_time()
    async with make_client(Recorder(httpx.Response(200)), qps=4.0) as client:
        for _ in range(9):
            await client.ping()
    assert trio.current_time() - start == pytest.approx(1.25)  # burst 4, then 5 x 0.25 s


async def test_basic_auth_refused_names_user_not_password() -> None:
    recorder = Recorder(httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    async with make_client(recorder, credentials=Credentials("alice", "hunter2")) as client:
        with pytest.raises(AuthError) as caught:
            await client.ping()
    assert "'alice'" in str(caught.value) and "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(client)


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST}).encode()
DIGEST = sha256_digest(MANIFEST)


async def test_head_manifest_absent_is_none_and_fallback_get_is_counted() -> None:
    recorder = Recorder(
        httpx.Response(404),
        httpx.Response(200, headers={"Content-Type": DOCKER_MANIFEST}),
        httpx.Response(200, content=MANIFEST, headers={"Content-Type": DOCKER_MANIFEST}),
    )
    async with make_client(recorder) as client:
        assert await client.head_manifest("a", "1") is None
        found = await client.head_manifest("a", "1")
        assert found is not None and (found.digest, found.size) == (DIGEST, len(MANIFEST))
        assert client.counts["manifest.head.fallback"] == 1
        assert client.counts["manifest.get"] == 1


@pytest.mark.parametrize(
    ("response", "reference", "error", "fragment"),
    [
        (httpx.Response(200, content=MANIFEST + b" "), DIGEST, DigestMismatchError, "hashing to"),
        (
            httpx.Response(
                200, content=MANIFEST, headers={"Docker-Content-Digest": "sha256:" + "0" * 64}
            ),
            "1",
            DigestMismatchError,
            "not sha256:000",
        ),
        (
            httpx.Response(200, content=b"{" * (4 * 1024 * 1024 + 1)),
            "1",
            UnsupportedError,
            "manifest larger than 4 MiB",
        ),
        (
            httpx.Response(
                200,
                content=b'{"schemaVersion": 1}',
                headers={"Content-Type": DOCKER_SCHEMA1_SIGNED},
            ),
            "1",
            UnsupportedError,
            "schema 1",
        ),
    ],
)
async def test_get_manifest_refusals(
    response: httpx.Response, reference: str, error: type[RegsyncError], fragment: str
) -> None:
    async with make_client(Recorder(response)) as client:
        with pytest.raises(error, match=fragment):
            await client.get_manifest("a", reference)


async def test_get_manifest_takes_media_type_from_body_when_served_as_json() -> None:
    served = httpx.Response(200, content=MANIFEST, headers={"Content-Type": "application/json"})
    async with make_client(Recorder(served)) as client:
        manifest = await client.get_manifest("a", DIGEST)
    assert (manifest.media_type, manifest.digest) == (DOCKER_MANIFEST, DIGEST)


async def test_exhausted_hub_quota_stops_the_next_get_before_sending() -> None:
    recorder = Recorder(
        httpx.Response(
            200,
            content=MANIFEST,
            headers={
                "Content-Type": DOCKER_MANIFEST,
                "Docker-Content-Digest": DIGEST,
                "RateLimit-Remaining": "0;w=21600",
            },
        )
    )
    async with make_client(recorder) as client:
        await client.get_manifest("a", "1")
        with pytest.raises(RateLimitError, match="pull quota exhausted"):
            await client.get_manifest("a", "2")
        assert await client.head_manifest("a", "1") is not None  # HEADs are free
    assert [r.method for r in recorder.requests] == ["GET", "HEAD"]


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_streamed_upload_mismatch_deletes_the_session_and_never_puts() -> None:
    recorder = Recorder(
        httpx.Response(202, headers={"Location": "/v2/a/blobs/uploads/u1?_state=s"}),
        httpx.Response(202, headers={"Location": "/v2/a/blobs/uploads/u1?_state=t"}),
        httpx.Response(204),
    )
    data = b"0123456789abcdef"
    claimed = sha256_digest(b"other")
    async with make_client(recorder) as client:
        with pytest.raises(DigestMismatchError, match="nothing committed"):
            await client.upload_blob("a", claimed, None, chunks_of(data[:8], data[8:]))
    assert [r.method for r in recorder.requests] == ["POST", "PATCH", "DELETE"]
    assert recorder.requests[2].url.query == b"_state=t"  # the PATCH's Location, not the POST's


async def test_streamed_upload_of_unknown_size_patches_then_commits_at_the_new_location() -> None:
    recorder = Recorder(
        httpx.Response(202, headers={"Location": "/v2/a/blobs/uploads/u1?_state=s"}),
        httpx.Response(202, headers={"Location": "/v2/a/blobs/uploads/u1?_state=t"}),
        httpx.Response(201),
    )
    data = b"0123456789abcdef"
    async with make_client(recorder) as client:
        await client.upload_blob("a", sha256_digest(data), None, chunks_of(data[:8], data[8:]))
    _post, patch, put = recorder.requests
    assert patch.headers.get("transfer-encoding") == "chunked"
    assert put.url.params["_state"] == "t" and put.url.params["digest"] == sha256_digest(data)


async def test_upload_of_known_size_streams_one_put_with_content_length() -> None:
    recorder = Recorder(
        httpx.Response(202, headers={"Location": "/v2/a/blobs/uploads/u1?_state=s"}),
        httpx.Response(201),
    )
    data = b"0123456789abcdef"
    async with make_client(recorder) as client:
        await client.upload_blob("a", sha256_digest(data), len(data), chunks_of(data[:8], data[8:]))
    post, put = recorder.requests
    assert post.method == "POST" and put.method == "PUT"
    assert put.headers["content-length"] == "16" and "transfer-encoding" not in put.headers
    assert put.url.params["_state"] == "s" and put.url.params["digest"] == sha256_digest(data)
    assert put.content == data


async def test_failed_commit_deletes_the_session() -> None:
    recorder = Recorder(
        httpx.Response(202, headers={"Location": "/v2/a/blobs/uploads/u1"}),
        httpx.Response(400, json=errors("BLOB_UPLOAD_INVALID")),
        httpx.Response(204),
    )
    async with make_client(recorder) as client:
        with pytest.raises(RegistryError, match="BLOB_UPLOAD_INVALID"):
            await client.upload_blob("a", sha256_digest(b"x"), 1, chunks_of(b"x"))
    assert [r.method for r in recorder.requests] == ["POST", "PUT", "DELETE"]


async def test_mount_refused_cancels_the_started_upload() -> None:
    recorder = Recorder(
        httpx.Response(202, headers={"Location": "/v2/a/blobs/uploads/u9"}), httpx.Response(204)
    )
    async with make_client(recorder) as client:
        assert not await client.mount_blob("a", DIGEST, "b")
    mount, delete = recorder.requests
    assert mount.url.params["mount"] == DIGEST and mount.url.params["from"] == "b"
    assert mount.extensions["regsync.scopes"] == ("repository:a:pull,push", "repository:b:pull")
    assert (delete.method, delete.url.path) == ("DELETE", "/v2/a/blobs/uploads/u9")


def test_credentials_echoed_by_a_registry_are_redacted() -> None:
    import base64

    from regsync.daemon.registry.answers import error_from_response

    header = "Basic " + base64.b64encode(b"alice:s3cret-pass").decode()
    request = httpx.Request("GET", "http://r.test/v2/", headers={"Authorization": header})
    body = (b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials",'
            b'"detail":{"Authorization":"' + header.encode() + b'","password":"s3cret-pass",'
            b'"other":"Bearer abc.def.ghi"}}]}')
    response = httpx.Response(401, content=body, request=request)
    text = str(error_from_response(response, "hub", "API check", user="alice"))
    assert "s3cret-pass" not in text and header.split()[1] not in text
    assert "abc.def.ghi" not in text and "***" in text


async def test_streamed_put_holds_back_the_last_chunk_until_the_digest_checked_out() -> None:
    from regsync.daemon.oci.digest import DigestVerifier
    from regsync.daemon.registry.streams import held_back

    data = b"0123456789abcdef"
    sent: list[bytes] = []

    def check(verifier: DigestVerifier) -> None:
        if verifier.digest != sha256_digest(data) or verifier.size != len(data):
            raise DigestMismatchError("mismatch")

    async def forward(parts: list[bytes]) -> None:
        verifier = DigestVerifier.for_digest(sha256_digest(data))
        async for chunk in held_back(chunks_of(*parts), verifier, len(data), check):
            sent.append(chunk)

    await forward([data[:8], data[8:]])
    assert b"".join(sent) == data
    for wrong in ([data[:8], b"X" * 8], [data[:8], data[8:12]], [data[:8], data[8:] + b"!"]):
        sent.clear()
        with pytest.raises(DigestMismatchError):
            await forward(wrong)
        # the registry got fewer bytes than Content-Length: it cannot commit
        assert len(b"".join(sent)) < len(data)
