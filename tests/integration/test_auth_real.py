"""RegistryAuth against the real distribution registry: htpasswd Basic and JWT token auth.

Only httpx and the flow are used here (no regsync client), so these tests pin the auth part
alone: what the real registry's challenges look like and whether it accepts our answers.
"""

from __future__ import annotations

import httpx
import pytest
from regsync.daemon.base.errors import AuthError
from regsync.daemon.registry.auth import SCOPES_EXTENSION, RegistryAuth
from regsync.daemon.registry.credentials import Credentials
from support.images import push_image, random_layer
from support.registry import RegistryServer

pytestmark = pytest.mark.integration


def _client(server: RegistryServer, password: str | None = None) -> httpx.AsyncClient:
    assert server.username is not None and server.password is not None
    creds = Credentials(server.username, password if password is not None else server.password)
    auth = RegistryAuth(registry="real", host=server.host, credentials=creds,
                        plain_http=server.url.startswith("http://"))
    return httpx.AsyncClient(auth=auth, base_url=server.url, timeout=10.0)


async def _get(client: httpx.AsyncClient, path: str, *scopes: str) -> httpx.Response:
    request = client.build_request("GET", path, extensions={SCOPES_EXTENSION: scopes})
    return await client.send(request)


@pytest.mark.parametrize("kind", ["basic_registry", "token_registry"])
async def test_registry_accepts_our_auth(kind: str, request: pytest.FixtureRequest) -> None:
    server: RegistryServer = request.getfixturevalue(kind)
    push_image(server, "team/app", "v1", layers=[random_layer(64, "auth")])
    async with _client(server) as client:
        assert (await _get(client, "/v2/")).status_code == 200
        tags = await _get(client, "/v2/team/app/tags/list", "repository:team/app:pull")
        assert tags.status_code == 200
        assert tags.json() == {"name": "team/app", "tags": ["v1"]}


async def test_token_is_reused_for_the_same_scope(token_registry: RegistryServer) -> None:
    service = token_registry.token_service
    assert service is not None
    push_image(token_registry, "team/app", "v1", layers=[random_layer(64, "reuse")])
    before = service.count()
    async with _client(token_registry) as client:
        for _ in range(3):
            tags = await _get(client, "/v2/team/app/tags/list", "repository:team/app:pull")
            assert tags.status_code == 200
        assert service.count() == before + 1
        other = await _get(client, "/v2/team/other/tags/list", "repository:team/other:pull")
        assert other.status_code == 404  # authorised, and the repository is unknown
    assert service.count() == before + 2


async def test_challenge_scope_is_enough_without_a_scope_hint(
    token_registry: RegistryServer,
) -> None:
    push_image(token_registry, "team/app", "v1", layers=[random_layer(64, "hint")])
    async with _client(token_registry) as client:
        assert (await _get(client, "/v2/team/app/tags/list")).status_code == 200


async def test_wrong_password_on_token_registry_names_registry_and_user(
    token_registry: RegistryServer,
) -> None:
    wrong = "definitely-wrong-password-123"
    async with _client(token_registry, password=wrong) as client:
        with pytest.raises(AuthError) as info:
            await _get(client, "/v2/team/app/tags/list", "repository:team/app:pull")
    text = str(info.value)
    assert "registry 'real'" in text and "user 'bob'" in text and "token service" in text
    for shown in (text, repr(info.value), repr(client.auth)):
        assert wrong not in shown and str(token_registry.password) not in shown
        assert "scope" not in shown


async def test_wrong_password_on_basic_registry_is_tried_once(
    basic_registry: RegistryServer,
) -> None:
    wrong = "definitely-wrong-password-456"
    async with _client(basic_registry, password=wrong) as client:
        response = await _get(client, "/v2/")
        assert response.status_code == 401  # the client maps this to AuthError
        assert wrong not in repr(client.auth)
    assert basic_registry.count("GET", r"/v2/") == 2
