"""The auth flow against a small fake registry and token service behind httpx.MockTransport.

The fake is strict the way distribution is: a repository path needs a token granting its scope,
and a 401 carries the scope that was missing. Token requests are recorded, so "no token request"
is an assertion, not a hope.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import trio
from regsync.daemon.base.errors import AuthError, RateLimitError, RegsyncError, RemoteServerError
from regsync.daemon.registry.auth import SCOPES_EXTENSION, RegistryAuth, realm_gets_credentials
from regsync.daemon.registry.credentials import Credentials

HOST = "registry.test:5000"
BASE = f"https://{HOST}"
REALM = "https://auth.test/token"
PASSWORD = "pa55-w0rd-never-shown"
USER = Credentials("alice", PASSWORD)
PULL_A = "repository:a:pull"
PULL_B = "repository:b:pull"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeRegistry:
    """A registry on HOST (bearer or basic) with its token service on auth.test."""

    mode: str = "bearer"
    password: str = PASSWORD
    expires_in: int | None = 300
    token_answer: httpx.Response | None = None
    checkpoint: bool = False
    realm: str = REALM
    tokens: dict[str, set[str]] = field(default_factory=dict)
    token_requests: list[httpx.Request] = field(default_factory=list)
    token_bodies: list[bytes] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    #: Authorization of each registry/blob request as sent (flows re-send the same object)
    sent: list[str | None] = field(default_factory=list)

    async def handle(self, request: httpx.Request, body: bytes) -> httpx.Response:
        if self.checkpoint:
            await trio.sleep(0.01)  # let concurrent tasks interleave
        if request.url.host == "auth.test":
            self.token_requests.append(request)
            self.token_bodies.append(body)
            return self.token_answer or self._issue(request)
        self.requests.append(request)
        self.sent.append(request.headers.get("Authorization"))
        if request.url.host != "registry.test":
            if request.url.path == "/401":  # storage that wants credentials of its own
                return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
            return httpx.Response(200, text="blob storage")
        if request.url.path.startswith("/v2/moved"):
            target = "/401" if request.url.path.endswith("401") else "/b?sig=1"
            return httpx.Response(307, headers={"Location": f"https://blobs.test{target}"})
        if request.url.path == "/v2/forbidden/":
            return httpx.Response(403)
        return self._serve(request)

    def _issue(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("Authorization")
        if auth is not None and auth != _basic("alice", self.password):
            return httpx.Response(401, json={"details": "bad credentials"})
        token = f"tok-{len(self.token_requests) - 1}"
        self.tokens[token] = set(request.url.params.get_list("scope"))
        body: dict[str, object] = {"token": token}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx.Response(200, json=body)

    def _serve(self, request: httpx.Request) -> httpx.Response:
        match = re.fullmatch(r"/v2/(?P<repo>.+)/(tags|manifests|blobs)/.*", request.url.path)
        needed = f"repository:{match['repo']}:pull" if match else None
        auth = request.headers.get("Authorization", "")
        if self.mode == "basic":
            if auth == _basic("alice", self.password):
                return httpx.Response(200)
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="Registry"'})
        granted = self.tokens.get(auth.removeprefix("Bearer "))
        if granted is not None and (needed is None or needed in granted):
            return httpx.Response(200, json={"ok": True})
        challenge = f'Bearer realm="{self.realm}",service="registry.test"'
        if needed:
            challenge += f',scope="{needed}"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})


class FakeTransport(httpx.AsyncBaseTransport):
    """Reads bodies the way a network transport does: a streamed body can be read only once.

    (httpx.MockTransport calls `request.aread()`, which makes every body replayable and would
    hide the streamed-upload case.)
    """

    def __init__(self, fake: FakeRegistry) -> None:
        self.fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        body = b"".join([chunk async for chunk in request.stream])
        return await self.fake.handle(request, body)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _client(
    fake: FakeRegistry,
    credentials: Credentials | None = USER,
    clock: FakeClock | None = None,
    **kwargs: object,
) -> httpx.AsyncClient:
    auth = RegistryAuth(
        registry="mirror", host=HOST, credentials=credentials, clock=clock or FakeClock()
    )
    return httpx.AsyncClient(auth=auth, transport=FakeTransport(fake), **kwargs)  # type: ignore[arg-type]


async def _get(client: httpx.AsyncClient, path: str, *scopes: str) -> httpx.Response:
    request = client.build_request("GET", BASE + path, extensions={SCOPES_EXTENSION: scopes})
    return await client.send(request)


async def test_bearer_challenge_fetches_token_with_credentials_and_retries_once() -> None:
    fake = FakeRegistry()
    async with _client(fake) as client:
        response = await _get(client, "/v2/a/tags/list", PULL_A)
    assert response.status_code == 200
    assert fake.sent == [None, "Bearer tok-0"]
    [token_request] = fake.token_requests
    assert token_request.headers["Authorization"] == _basic("alice", PASSWORD)
    assert token_request.url.params.get_list("scope") == [PULL_A]
    assert token_request.url.params["service"] == "registry.test"
    assert token_request.url.params["account"] == "alice"


async def test_same_scope_reuses_the_token_proactively_other_scope_fetches_one() -> None:
    fake = FakeRegistry()
    async with _client(fake) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
        await _get(client, "/v2/a/manifests/latest", PULL_A)
        assert len(fake.token_requests) == 1
        assert len(fake.requests) == 3  # the second GET went out with a token: no 401
        await _get(client, "/v2/b/tags/list", PULL_B)
    assert len(fake.token_requests) == 2
    assert len(fake.requests) == 4  # a known bearer registry: token first, then one GET
    assert fake.requests[-1].headers["Authorization"] == "Bearer tok-1"


async def test_scopes_from_challenge_and_request_are_united() -> None:
    fake = FakeRegistry()
    async with _client(fake) as client:
        response = await _get(client, "/v2/a/tags/list")  # the caller forgot its scope
        assert response.status_code == 200
        assert fake.token_requests[0].url.params.get_list("scope") == [PULL_A]
        await _get(client, "/v2/b/tags/list", "repository:b:push", "repository:a:pull")
    scopes = fake.token_requests[-1].url.params.get_list("scope")
    assert scopes == ["repository:a:pull", "repository:b:pull,push"]


@pytest.mark.parametrize(("expires_in", "lifetime"), [(100, 90.0), (None, 50.0), (8, 4.0)])
async def test_tokens_expire_with_a_safety_margin(expires_in: int | None, lifetime: float) -> None:
    fake, clock = FakeRegistry(expires_in=expires_in), FakeClock()
    async with _client(fake, clock=clock) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
        clock.now += lifetime - 0.5
        await _get(client, "/v2/a/tags/list", PULL_A)
        assert len(fake.token_requests) == 1
        clock.now += 1.0
        await _get(client, "/v2/a/tags/list", PULL_A)
    assert len(fake.token_requests) == 2


async def test_a_refused_cached_token_is_replaced_once() -> None:
    fake = FakeRegistry()
    async with _client(fake) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
        fake.tokens.clear()  # the registry forgets every token (e.g. revoked)
        response = await _get(client, "/v2/a/tags/list", PULL_A)
    assert response.status_code == 200
    assert len(fake.token_requests) == 2
    sent = fake.sent
    assert sent == [None, "Bearer tok-0", "Bearer tok-0", "Bearer tok-1"]


async def test_second_401_goes_back_to_the_client() -> None:
    fake = FakeRegistry()
    fake.token_answer = httpx.Response(200, json={"token": "useless"})
    async with _client(fake) as client:
        response = await _get(client, "/v2/a/tags/list", PULL_A)
    assert response.status_code == 401
    assert len(fake.requests) == 2 and len(fake.token_requests) == 1


async def test_anonymous_token_for_public_pulls() -> None:
    fake = FakeRegistry()
    async with _client(fake, credentials=None) as client:
        response = await _get(client, "/v2/a/tags/list", PULL_A)
    assert response.status_code == 200
    [token_request] = fake.token_requests
    assert "Authorization" not in token_request.headers
    assert "account" not in token_request.url.params


async def test_identity_token_uses_the_oauth2_refresh_grant() -> None:
    fake = FakeRegistry()
    fake.token_answer = httpx.Response(200, json={"access_token": "oauth-tok", "expires_in": 60})
    async with _client(fake, credentials=Credentials("<token>", "refresh-me")) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
    [token_request] = fake.token_requests
    assert token_request.method == "POST"
    form = dict(httpx.QueryParams(fake.token_bodies[0].decode()))
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "refresh-me"
    assert form["scope"] == PULL_A and form["service"] == "registry.test"
    assert fake.requests[-1].headers["Authorization"] == "Bearer oauth-tok"


async def test_token_request_keeps_the_callers_timeout() -> None:
    fake = FakeRegistry()
    async with _client(fake, timeout=httpx.Timeout(7.0)) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
    assert fake.token_requests[0].extensions["timeout"]["read"] == 7.0


async def test_refused_credentials_raise_auth_error_without_secrets() -> None:
    fake = FakeRegistry(password="the-real-one", realm=REALM + "?tenant=q-secret")
    async with _client(fake) as client:
        with pytest.raises(AuthError) as info:
            await _get(client, "/v2/a/tags/list", PULL_A)
    assert str(info.value) == (
        "registry 'mirror': credentials for user 'alice' were refused by the token service at "
        "https://auth.test/token"
    )
    assert info.value.status == 401
    for text in (str(info.value), repr(info.value)):
        assert PASSWORD not in text and "scope" not in text and "q-secret" not in text


async def test_anonymous_refusal_says_credentials_are_required() -> None:
    fake = FakeRegistry()
    fake.token_answer = httpx.Response(403)
    async with _client(fake, credentials=None) as client:
        with pytest.raises(AuthError, match="registry 'mirror': the registry requires credentials"):
            await _get(client, "/v2/a/tags/list", PULL_A)


@pytest.mark.parametrize(
    ("answer", "error", "temporary"),
    [
        (httpx.Response(200, text="<html>login</html>"), RemoteServerError, False),
        (httpx.Response(200, json={"expires_in": 60}), RemoteServerError, False),
        (httpx.Response(200, json=["token"]), RemoteServerError, False),
        (httpx.Response(502), RemoteServerError, True),
        (httpx.Response(429), RateLimitError, True),
    ],
)
async def test_broken_token_service(
    answer: httpx.Response, error: type[RegsyncError], temporary: bool
) -> None:
    fake = FakeRegistry()
    fake.token_answer = answer
    async with _client(fake) as client:
        with pytest.raises(error) as info:
            await _get(client, "/v2/a/tags/list", PULL_A)
    assert info.value.temporary is temporary
    assert "mirror" in str(info.value)


async def test_registry_403_after_a_fresh_token_is_returned() -> None:
    fake = FakeRegistry()
    async with _client(fake) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
        response = await _get(client, "/v2/forbidden/")
    assert response.status_code == 403


async def test_basic_challenge_then_proactive_basic() -> None:
    fake = FakeRegistry(mode="basic")
    async with _client(fake) as client:
        assert (await _get(client, "/v2/")).status_code == 200
        assert (await _get(client, "/v2/a/tags/list")).status_code == 200
    sent = fake.sent
    assert sent == [None, _basic("alice", PASSWORD), _basic("alice", PASSWORD)]
    assert fake.token_requests == []


async def test_wrong_basic_password_is_tried_once() -> None:
    fake = FakeRegistry(mode="basic", password="other")
    async with _client(fake) as client:
        assert (await _get(client, "/v2/")).status_code == 401
        assert (await _get(client, "/v2/")).status_code == 401
    assert len(fake.requests) == 3  # 401, retry with Basic; then Basic at once


async def test_basic_without_credentials_returns_the_401() -> None:
    fake = FakeRegistry(mode="basic")
    async with _client(fake, credentials=None) as client:
        assert (await _get(client, "/v2/")).status_code == 401
    assert len(fake.requests) == 1


async def test_password_never_goes_to_a_plain_http_realm_on_another_host() -> None:
    """A registry naming an http:// token service elsewhere would have the password cross the
    network in plain text to a host the user never chose: refused before anything is sent."""
    fake = FakeRegistry(realm="http://auth.test/token")
    async with _client(fake) as client:
        with pytest.raises(AuthError, match="only to a token service on https") as info:
            await _get(client, "/v2/a/tags/list", PULL_A)
    assert fake.token_requests == []
    assert PASSWORD not in str(info.value)


async def test_anonymous_token_from_a_plain_http_realm_is_still_fetched() -> None:
    fake = FakeRegistry(realm="http://auth.test/token")
    async with _client(fake, credentials=None) as client:
        assert (await _get(client, "/v2/a/tags/list", PULL_A)).status_code == 200
    assert [r.headers.get("Authorization") for r in fake.token_requests] == [None]


@pytest.mark.parametrize(("host", "plain_http", "realm", "sent"), [
    ("registry.test:5000", False, "https://auth.test/token", True),  # Docker's case
    ("registry.test:5000", True, "https://auth.test/token", True),
    ("registry.test:5000", False, "http://auth.test/token", False),
    ("registry.test:5000", False, "http://registry.test:5001/token", False),  # a downgrade
    ("registry.test:5000", True, "http://registry.test:5001/token", True),  # same host, http
    ("registry.test:5000", True, "http://REGISTRY.test/token", True),
    ("registry.test:5000", True, "http://auth.test/token", False),
    ("127.0.0.1:5000", True, "http://127.0.0.1:5001/token", True),
    ("[::1]:5000", True, "http://[::1]:5001/", True),
])
def test_which_realms_get_the_password(host: str, plain_http: bool, realm: str,
                                       sent: bool) -> None:
    assert realm_gets_credentials(host, plain_http, realm) is sent


async def test_https_registry_sends_no_password_to_its_own_host_over_http() -> None:
    fake = FakeRegistry(mode="basic")
    async with _client(fake) as client:
        assert (await _get(client, "/v2/")).status_code == 200
        request = client.build_request("GET", f"http://{HOST}/v2/")
        assert (await client.send(request)).status_code == 401
    assert fake.sent[-1] is None


async def test_followed_redirect_to_another_host_carries_no_authorization() -> None:
    fake = FakeRegistry()
    async with _client(fake, follow_redirects=True) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
        response = await _get(client, "/v2/moved", PULL_A)
    assert response.status_code == 200 and response.text == "blob storage"
    assert fake.requests[-1].url.host == "blobs.test"
    assert fake.sent[-2:] == ["Bearer tok-0", None]


async def test_401_from_the_redirect_target_is_returned_untouched() -> None:
    fake = FakeRegistry()
    async with _client(fake, follow_redirects=True) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
        response = await _get(client, "/v2/moved401", PULL_A)
    assert response.status_code == 401
    assert fake.sent[-2:] == ["Bearer tok-0", None]
    assert len(fake.token_requests) == 1


async def test_absolute_location_on_another_host_gets_no_token() -> None:
    fake = FakeRegistry()
    async with _client(fake) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
        request = client.build_request(
            "GET", "https://blobs.test/b?sig=1", extensions={SCOPES_EXTENSION: (PULL_A,)}
        )
        response = await client.send(request)
    assert response.status_code == 200
    assert "Authorization" not in fake.requests[-1].headers
    assert len(fake.token_requests) == 1


async def test_streamed_body_is_not_replayed_after_a_401() -> None:
    fake = FakeRegistry()

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    async with _client(fake) as client:
        request = client.build_request(
            "PUT",
            BASE + "/v2/a/blobs/uploads/x",
            content=body(),
            extensions={SCOPES_EXTENSION: (PULL_A,)},
        )
        response = await client.send(request)
        assert response.status_code == 401
        assert len(fake.requests) == 1
        # what the 401 taught is kept: the caller's retry carries a token from the start
        retry = client.build_request(
            "PUT",
            BASE + "/v2/a/blobs/uploads/x",
            content=body(),
            extensions={SCOPES_EXTENSION: (PULL_A,)},
        )
        assert (await client.send(retry)).status_code == 200
    assert fake.sent == [None, "Bearer tok-0"]


async def test_concurrent_tasks_fetch_one_token() -> None:
    fake = FakeRegistry(checkpoint=True)
    statuses: list[int] = []
    async with _client(fake) as client:

        async def pull() -> None:
            statuses.append((await _get(client, "/v2/a/tags/list", PULL_A)).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(pull)
    assert statuses == [200] * 10
    assert len(fake.token_requests) == 1


async def test_no_secret_in_repr_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeRegistry()
    auth = RegistryAuth(registry="mirror", host=HOST, credentials=USER)
    async with httpx.AsyncClient(auth=auth, transport=FakeTransport(fake)) as client:
        await _get(client, "/v2/a/tags/list", PULL_A)
    assert repr(auth) == "RegistryAuth(registry='mirror', host='registry.test:5000', user='alice')"
    assert any("auth.test/token" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert PASSWORD not in record.getMessage() and "tok-0" not in record.getMessage()


def test_sync_clients_are_refused() -> None:
    auth = RegistryAuth(registry="mirror", host=HOST, credentials=USER)
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    with httpx.Client(auth=auth, transport=transport) as c, pytest.raises(RuntimeError):
        c.get(BASE + "/v2/")


async def test_an_endless_token_answer_is_cut_at_its_cap() -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"{" * 65536

    fake = FakeRegistry()
    fake.token_answer = httpx.Response(200, content=endless())
    async with _client(fake) as client:
        with pytest.raises(RemoteServerError, match="sent more than 1048576 bytes"):
            await _get(client, "/v2/a/tags/list", PULL_A)


async def test_a_trickling_token_answer_is_given_up_on(autojump_clock: trio.abc.Clock) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        while True:
            await trio.sleep(5)
            yield b" "

    fake = FakeRegistry()
    fake.token_answer = httpx.Response(200, content=trickle())
    async with _client(fake) as client:
        started = trio.current_time()
        with pytest.raises(RemoteServerError, match="did not answer within 30 s") as info:
            await _get(client, "/v2/a/tags/list", PULL_A)
    assert info.value.temporary
    assert trio.current_time() - started == pytest.approx(30, abs=5)
