"""A minimal Docker-style token service, so the registry can run with `auth.token`.

Docker Hub, GHCR, Quay and Harbor all use this flow: 401 with a Bearer challenge, then
`GET realm?service=...&scope=repository:NAME:pull,push` with Basic credentials, answered by a
JWT. The registry verifies the JWT with the certificate carried in its `x5c` header, which must
chain to `rootcertbundle`; a self-signed CA:true certificate is its own chain.

Behaviour (like Docker Hub): wrong password -> 401; no credentials -> a token granting only
what `grants[None]` allows (nothing by default), so the registry then refuses the request.
Every request is recorded, so tests can assert token caching.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .certs import ca_certificate

ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})


@dataclass(frozen=True, slots=True)
class Scope:
    """`type:name:actions`; the name may itself hold a colon (host:port/repo)."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One request the service answered (no password kept)."""

    method: str
    account: str | None
    scopes: tuple[Scope, ...]
    status: int


class TokenService:
    """Issues ES256 JWTs for `users` ({name: password}); runs http.server in a thread.

    `grants` maps an account (None = anonymous) to the actions it may receive; by default every
    known user gets whatever it asks for and anonymous gets nothing.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        workdir: Path,
        *,
        service: str = "regsync-test-registry",
        issuer: str = "regsync-test-issuer",
        expires_in: int = 300,
        grants: Mapping[str | None, frozenset[str]] | None = None,
    ) -> None:
        self.users = dict(users)
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.grants: dict[str | None, frozenset[str]] = (
            dict(grants) if grants is not None else dict.fromkeys(users, ALL_ACTIONS)
        )
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._key = ec.generate_private_key(ec.SECP256R1())
        cert = ca_certificate(self._key, "regsync test token signer")
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.cert_path = workdir / "token-root.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never passwords or keys
        return f"TokenService(url={self.url!r}, users={sorted(self.users)!r})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> None:
        # a short poll interval: shutdown() waits for it, and tests stop servers often
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def count(self, *, account: str | None = None, status: int | None = None) -> int:
        """Requests seen, optionally only one account's (None: any) and/or one answer status."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (account is None or r.account == account)
                and (status is None or r.status == status)
            )

    # the pure-ish core, called by the handler ----------------------------------------------------
    def answer(
        self, method: str, account: str | None, password: str | None, scopes: list[Scope]
    ) -> tuple[int, dict[str, object]]:
        """Check credentials and issue a token; returns (status, JSON body)."""
        ok = account is None or (account in self.users and self.users[account] == password)
        status = 200 if ok else 401
        with self._lock:
            self.requests.append(TokenRequest(method, account, tuple(scopes), status))
        if not ok:
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
        token = self.issue(account, scopes)
        return 200, {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": dt.datetime.now(dt.UTC).isoformat(),
        }

    def issue(self, account: str | None, scopes: list[Scope]) -> str:
        """Sign a JWT granting each scope the intersection of asked and allowed actions."""
        allowed = self.grants.get(account, frozenset())
        access = [
            {"type": s.type, "name": s.name, "actions": [a for a in s.actions if a in allowed]}
            for s in scopes
        ]
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [self._x5c]})


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _scopes(values: list[str]) -> list[Scope]:
    # scopes come as repeated params and/or space-separated in one (both are in the spec)
    return [Scope.parse(part) for value in values for part in value.split() if part]


def _handler_for(service: TokenService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            user, password = _basic_credentials(self.headers.get("Authorization"))
            self._reply(*service.answer("GET", user, password, _scopes(query.get("scope", []))))

        def do_POST(self) -> None:
            # OAuth2 password grant (containerd, buildkit): credentials in the form body
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            user = form.get("username", [None])[0]
            password = form.get("password", [None])[0]
            self._reply(*service.answer("POST", user, password, _scopes(form.get("scope", []))))

        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="regsync-test-token"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: requests are recorded in service.requests

    return Handler


def new_password() -> str:
    """A random per-run test password."""
    return secrets.token_urlsafe(12)
