"""Registry authentication as an httpx auth flow: Basic, and Docker's bearer-token protocol.

The flow yields requests and receives responses; the client does the I/O (httpx's `_auth.py`
pattern). What it guarantees:

- Authorization is only ever attached to requests for the registry's own `host` (go-containerregistry
  `bearer.go`): a redirect or an absolute Location to blob storage never carries a token or a
  password. (httpx also strips Authorization on cross-origin redirects.) A registry on https
  never has its password sent to plain-http URLs of its own host either.
- The password goes to a bearer realm (the token service) as Docker sends it, but only to a realm
  on https, or on the registry's own host when the registry itself speaks plain http (it gets
  the password in plain text anyway); any other realm is an AuthError, nothing is sent.
- Once the registry has said it wants bearer tokens, each request proactively gets a cached token
  for its scopes (`request.extensions[SCOPES_EXTENSION]`), fetching one first if needed, so a
  streamed upload body is not sent just to collect a 401.
- On a 401 the challenge decides: Basic -> retry with credentials; Bearer -> fetch a token for the
  union of the request's and the challenge's scopes, retry once. A second 401, or a 401 with no
  credentials to offer, goes back to the client, which maps it to AuthError.
- Tokens are cached per (realm, service, sorted scopes) until `expires_in` minus a margin; one
  trio.Lock per key means concurrent tasks needing the same token fetch it once.
- Tokens and passwords never reach logs, errors or reprs.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from ..base.errors import AuthError, RateLimitError, RemoteServerError, redact_url
from ..oci.jsondoc import parse_json
from .challenge import Challenge, merge_scopes, parse_challenges
from .credentials import Credentials

#: request.extensions key: the token scopes a request needs, e.g. ("repository:a/b:pull",)
SCOPES_EXTENSION = "regsync.scopes"
#: lifetime the token spec says to assume when the service sends no `expires_in`
DEFAULT_EXPIRES_IN = 60.0
#: a token is dropped this long before it expires, so it never dies mid-request
SAFETY_MARGIN = 10.0
#: client_id for the OAuth2 refresh-token grant (identity tokens)
CLIENT_ID = "regsync"
#: a token answer is a few KB (JWTs with long scopes stay well under this)
TOKEN_ANSWER_MAX = 1 << 20
TOKEN_ANSWER_SECONDS = 30.0
#: a 401's body is read for its connection's sake only
_REFUSAL_READ_MAX = 64 << 10

_log = logging.getLogger(__name__)
_TokenKey = tuple[str, str, tuple[str, ...]]  # realm, service, merged scopes


@dataclass(frozen=True, slots=True)
class _Bearer:
    realm: str
    service: str


class TokenCache:
    """Bearer tokens by key with deadlines; pure apart from the injected clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tokens: dict[_TokenKey, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"TokenCache({len(self._tokens)} tokens)"

    def get(self, key: _TokenKey) -> str | None:
        entry = self._tokens.get(key)
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    def put(self, key: _TokenKey, token: str, expires_in: float) -> None:
        now = self._clock()
        self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
        margin = min(SAFETY_MARGIN, expires_in / 2)
        self._tokens[key] = (token, now + expires_in - margin)


class RegistryAuth(httpx.Auth):
    """Authenticates one registry's requests; share one instance among all tasks using it."""

    def __init__(
        self,
        *,
        registry: str,
        host: str,
        credentials: Credentials | None,
        plain_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.host = host
        self._plain_http = plain_http
        self._credentials = credentials
        self._origin = _origin(httpx.URL(f"https://{host}"))
        self._cache = TokenCache(clock)
        self._locks: dict[_TokenKey, trio.Lock] = {}
        self._bearer: _Bearer | None = None
        self._wants_basic = False

    def __repr__(self) -> str:
        user = self._credentials.username if self._credentials else None
        return f"RegistryAuth(registry={self.registry!r}, host={self.host!r}, user={user!r})"

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._ours(request.url):
            yield request  # another host (blob storage): never our credentials
            return
        scopes = merge_scopes(_requested_scopes(request))
        refused: str | None = None
        for attempt in (1, 2):
            bearer = self._bearer
            if bearer is not None:
                key = (bearer.realm, bearer.service, scopes)
                async with self._locks.setdefault(key, trio.Lock()):
                    token = self._cache.get(key)
                    if token is None or token == refused:
                        answer = yield self._token_request(key, request)
                        token = await self._accept_token(key, answer)
                request.headers["Authorization"] = f"Bearer {token}"
                refused = token
            elif self._wants_basic and self._credentials is not None:
                request.headers["Authorization"] = _basic(self._credentials)
            response = yield request
            extra = self._retry_scopes(request, response) if attempt == 1 else None
            if extra is None:
                return
            # read the 401 now: it holds a connection, and the token fetch we may wait for
            # needs one (with every connection held by a request waiting here, none would come)
            await _release(response, self.registry)
            scopes = merge_scopes(scopes + extra)

    def _ours(self, url: httpx.URL) -> bool:
        """The registry's own origin (an http -> https upgrade stays ours, a downgrade does not)."""
        return _origin(url) == self._origin and (self._plain_http or url.scheme == "https")

    def sync_auth_flow(self, request: httpx.Request) -> Any:
        raise RuntimeError("RegistryAuth needs an httpx.AsyncClient (its token lock is trio's)")

    def _retry_scopes(
        self, request: httpx.Request, response: httpx.Response
    ) -> tuple[str, ...] | None:
        """Learn from a 401: the scopes to add before the one retry, or None for no retry."""
        if response.status_code != 401 or not self._ours(response.request.url):
            return None
        extra = self._learn(request, response)
        if not isinstance(request.stream, httpx.ByteStream):
            # A streamed body cannot be sent twice: the client sees the 401, and what was learnt
            # makes its next attempt carry credentials from the start.
            return None
        return extra

    def _learn(self, request: httpx.Request, response: httpx.Response) -> tuple[str, ...] | None:
        challenges = parse_challenges(", ".join(response.headers.get_list("www-authenticate")))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            self._bearer = self._bearer_from(bearer)
            self._wants_basic = False
            return bearer.scopes
        if any(c.scheme == "basic" for c in challenges) and self._credentials is not None:
            already_sent = request.headers.get("Authorization", "").startswith("Basic ")
            self._bearer, self._wants_basic = None, True
            return None if already_sent else ()
        return None

    def _bearer_from(self, challenge: Challenge) -> _Bearer:
        realm = challenge.params.get("realm", "")
        url = httpx.URL(realm) if realm else None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise RemoteServerError(
                "the registry asked for a bearer token without a usable realm URL",
                registry=self.registry,
                status=401,
            )
        return _Bearer(realm, challenge.params.get("service", ""))

    def _token_request(self, key: _TokenKey, original: httpx.Request) -> httpx.Request:
        realm, service, scopes = key
        _log.debug("registry %r: token for %s from %s", self.registry, scopes, redact_url(realm))
        # Without the caller's timeout extension httpcore would wait forever.
        extensions = {k: v for k, v in original.extensions.items() if k == "timeout"}
        creds = self._credentials
        if creds is not None and not realm_gets_credentials(self.host, self._plain_http, realm):
            raise AuthError(
                f"the registry sent its token service as {redact_url(realm)}: regsync sends "
                "the password only to a token service on https (or, for a plain-http registry, "
                "on its own host)",
                registry=self.registry,
                status=401,
            )
        if creds is not None and creds.is_identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.password}
            form |= {"client_id": CLIENT_ID, "service": service, "scope": " ".join(scopes)}
            return httpx.Request("POST", realm, data=form, extensions=extensions)
        params: list[tuple[str, str | int | float | bool | None]] = []
        params += [("service", service)] if service else []
        params += [("scope", scope) for scope in scopes]
        headers = {}
        if creds is not None:
            params.append(("account", creds.username))
            headers["Authorization"] = _basic(creds)
        return httpx.Request("GET", realm, params=params, headers=headers, extensions=extensions)

    async def _accept_token(self, key: _TokenKey, response: httpx.Response) -> str:
        """The token from the token service's answer, cached.

        Raises:
            AuthError: the service refused the credentials (401/403).
            RateLimitError: it answered 429.
            RemoteServerError: any other failure, or an answer without a token.
        """
        where = redact_url(key[0])
        status = response.status_code
        if status in (401, 403):
            raise AuthError(self._refusal(where), registry=self.registry, status=status)
        if status == 429:
            raise RateLimitError(
                f"the token service at {where} is rate limiting", registry=self.registry, status=429
            )
        if not 200 <= status < 300:
            raise RemoteServerError(
                f"the token service at {where} answered HTTP {status}",
                registry=self.registry,
                status=status,
                temporary=status >= 500,
            )
        token, expires_in = _parse_token(await _read_token_answer(response, where, self.registry))
        if token is None:
            raise RemoteServerError(
                f"the token service at {where} sent no token (want JSON with 'token')",
                registry=self.registry,
                status=status,
            )
        self._cache.put(key, token, expires_in)
        return token

    def _refusal(self, where: str) -> str:
        creds = self._credentials
        if creds is None:
            return f"the registry requires credentials: the token service at {where} refused anonymous access"
        if creds.is_identity_token:
            return f"the identity token was refused by the token service at {where}"
        return (
            f"credentials for user {creds.username!r} were refused by the token service at {where}"
        )


def realm_gets_credentials(host: str, plain_http: bool, realm: str) -> bool:
    """Whether the password of the registry at `host` ("host[:port]") may go to `realm`: over
    https, as Docker does; over plain http only to the registry's own host name, and only when
    the registry is plain http itself (nothing is then exposed that is not exposed already)."""
    url = httpx.URL(realm)
    if url.scheme == "https":
        return True
    own = httpx.URL(f"http://{host}").host.lower()
    return plain_http and url.scheme == "http" and url.host.lower() == own


async def _read_token_answer(response: httpx.Response, where: str, registry: str) -> bytes:
    """The token service's body: at most TOKEN_ANSWER_MAX bytes within TOKEN_ANSWER_SECONDS (a
    hostile realm may stream forever, or a byte at a time).

    Raises:
        RemoteServerError: the answer is larger or slower than that.
    """
    return await _read_capped(response, TOKEN_ANSWER_MAX, f"the token service at {where}",
                              registry)


async def _release(response: httpx.Response, registry: str) -> None:
    """Read a refused request's body now: it holds a connection (capped like any answer)."""
    await _read_capped(response, _REFUSAL_READ_MAX, "the registry's refusal (401)", registry)


async def _read_capped(response: httpx.Response, limit: int, what: str, registry: str) -> bytes:
    body = bytearray()
    with trio.move_on_after(TOKEN_ANSWER_SECONDS) as scope:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise RemoteServerError(f"{what} sent more than {limit} bytes",
                                        registry=registry, status=response.status_code)
    if scope.cancelled_caught:
        raise RemoteServerError(f"{what} did not answer within {TOKEN_ANSWER_SECONDS:g} s",
                                registry=registry, status=response.status_code, temporary=True)
    # httpx reads every response of an auth flow again once the flow moves on: hand it the bytes
    response._content = bytes(body)
    return response._content


def _parse_token(body: bytes) -> tuple[str | None, float]:
    """`token` (or OAuth2's `access_token`) and its lifetime in seconds."""
    try:
        data = parse_json(body)
    except ValueError:
        return None, 0.0
    if not isinstance(data, dict):
        return None, 0.0
    token = data.get("token") or data.get("access_token")
    expires_in = data.get("expires_in")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
        expires_in = DEFAULT_EXPIRES_IN
    return (token if isinstance(token, str) and token else None), float(expires_in)


def _requested_scopes(request: httpx.Request) -> tuple[str, ...]:
    value = request.extensions.get(SCOPES_EXTENSION, ())
    return (value,) if isinstance(value, str) else tuple(value)


def _origin(url: httpx.URL) -> tuple[str, int | None]:
    """Host and port, with default ports folded to None: http->https upgrades stay ours."""
    port = None if url.port in (None, 80, 443) else url.port
    return url.host.lower(), port


def _basic(creds: Credentials) -> str:
    pair = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
