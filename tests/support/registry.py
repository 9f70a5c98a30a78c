"""A real `docker-registry` (distribution 2.8.2) process for integration tests.

We test against the real registry for everything it can do (STYLE.md, "Tests"): its answers,
redirects and error bodies are what regsync must cope with, and a fake would only echo our own
assumptions. Start-up takes ~50 ms, so every test may have a fresh one.

The registry writes an Apache-style access log to stdout (kept in `access.log`) and JSON
diagnostics to stderr (kept in `registry.log`). `count()` reads the access log so tests can say
"zero manifest GETs on the source".
"""

from __future__ import annotations

import enum
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import bcrypt
import httpx

from .certs import self_signed
from .tokenservice import TokenService

REGISTRY_BIN = "docker-registry"
_START_TIMEOUT = 10.0
_ACCESS_RE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<uri>\S+) [^"]*" (?P<status>\d{3})'
)
_SENTINEL = "/v2/?regsync-testbed-sentinel="


class AuthMode(enum.Enum):
    """How the registry authenticates clients."""

    ANONYMOUS = "anonymous"
    BASIC = "basic"
    TOKEN = "token"


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One request as the registry logged it."""

    method: str
    uri: str
    status: int

    @property
    def path(self) -> str:
        return self.uri.split("?", 1)[0]


class RegistryFactory(Protocol):
    """The `registry_factory` fixture: start one more registry, stopped at teardown."""

    def __call__(
        self,
        auth: AuthMode | str = ...,
        *,
        username: str | None = ...,
        password: str | None = ...,
        relative_urls: bool = ...,
        tls: bool = ...,
        delete: bool = ...,
    ) -> RegistryServer: ...


def free_port() -> int:
    """A loopback port free right now (the registry binds it itself, so a race is possible and
    `RegistryServer.start` retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _htpasswd_line(username: str, password: str) -> str:
    # cost 4 (the minimum) keeps each authenticated request fast; this is a test secret
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{username}:{hashed}\n"


class RegistryServer:
    """One registry process; use as a context manager or call start()/stop().

    Attributes: url ("http://127.0.0.1:PORT"), host ("127.0.0.1:PORT"), username/password (None
    when anonymous), data_dir (the filesystem storage root), token_service (token mode only).
    """

    def __init__(
        self,
        auth: AuthMode | str = AuthMode.ANONYMOUS,
        *,
        username: str | None = None,
        password: str | None = None,
        relative_urls: bool = False,
        workdir: Path | None = None,
        tls: bool = False,
        delete: bool = True,
    ) -> None:
        self.auth = AuthMode(auth)
        anonymous = self.auth is AuthMode.ANONYMOUS
        self.username: str | None = None if anonymous else (username or "alice")
        self.password: str | None = None if anonymous else (password or secrets.token_urlsafe(12))
        self.relative_urls = relative_urls
        self.tls = tls
        #: `storage.delete.enabled`: False makes every manifest DELETE 405 UNSUPPORTED
        self.delete = delete
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="regsync-registry-"))
        self.data_dir = self.workdir / "data"
        #: with tls=True: the self-signed certificate the registry serves (its own CA)
        self.cert_path = self.workdir / "registry-cert.pem"
        self._key_path = self.workdir / "registry-key.pem"
        self.access_log_path = self.workdir / "access.log"
        self.log_path = self.workdir / "registry.log"
        self.token_service: TokenService | None = None
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:  # never the password
        return f"RegistryServer({self.auth.value}, url={self.url!r}, user={self.username!r})"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    # lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, val: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start and wait until `GET /v2/` answers (200, or 401 when auth is on)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.tls and not self.cert_path.exists():
            self_signed(self.workdir, "registry-")
        if self.auth is AuthMode.TOKEN and self.token_service is None:
            assert self.username is not None and self.password is not None
            self.token_service = TokenService({self.username: self.password}, self.workdir)
            self.token_service.start()
        for _attempt in range(3):
            self.port = free_port()
            config = self.workdir / "config.yml"
            config.write_text(self._config())
            if self._spawn(config):
                return
            self._kill()
        raise RuntimeError(f"docker-registry did not start; see {self.log_path}")

    def stop(self) -> None:
        """Terminate the registry (kill after 5 s), stop the token service; keep the files unless
        the work dir is ours (then remove it)."""
        self._kill()
        if self.token_service is not None:
            self.token_service.stop()
            self.token_service = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _spawn(self, config: Path) -> bool:
        with self.access_log_path.open("ab") as out, self.log_path.open("ab") as err:
            self._proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False  # most likely the port was taken meanwhile
            try:
                probe = httpx.get(f"{self.url}{_SENTINEL}ready", timeout=1.0, verify=False)
                if probe.status_code in (200, 401):
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        return False

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # config ------------------------------------------------------------------------------------
    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log: {level: info, formatter: json, accesslog: {disabled: false}}",
            "storage:",
            f"  filesystem: {{rootdirectory: {self.data_dir}}}",
            f"  delete: {{enabled: {'true' if self.delete else 'false'}}}",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: {secrets.token_hex(16)}",
            f"  relativeurls: {'true' if self.relative_urls else 'false'}",
        ]
        if self.tls:
            lines.append(f"  tls: {{certificate: {self.cert_path}, key: {self._key_path}}}")
        return "\n".join(lines + self._auth_config()) + "\n"

    def _auth_config(self) -> list[str]:
        if self.auth is AuthMode.BASIC:
            assert self.username is not None and self.password is not None
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(_htpasswd_line(self.username, self.password))
            return ["auth:", "  htpasswd:", "    realm: regsync-test", f"    path: {htpasswd}"]
        if self.auth is AuthMode.TOKEN:
            ts = self.token_service
            assert ts is not None
            return [
                "auth:",
                "  token:",
                f"    realm: {ts.url}",
                f"    service: {ts.service}",
                f"    issuer: {ts.issuer}",
                f"    rootcertbundle: {ts.cert_path}",
            ]
        return []

    # access log --------------------------------------------------------------------------------
    def access_log_lines(self, *, sync: bool = True) -> list[str]:
        """Raw access-log lines (sentinel requests excluded).

        The registry logs a request just after answering it; with `sync` we first make a sentinel
        request and wait for its line, so everything answered before is in the file.
        """
        if sync and self.running:
            self._sync_log()
        path = self.access_log_path
        text = path.read_text(errors="replace") if path.exists() else ""
        return [ln for ln in text.splitlines() if _SENTINEL not in ln and _ACCESS_RE.match(ln)]

    def access_log(self, *, sync: bool = True) -> list[AccessEntry]:
        """Parsed access log, oldest first."""
        entries = []
        for line in self.access_log_lines(sync=sync):
            m = _ACCESS_RE.match(line)
            assert m is not None
            entries.append(AccessEntry(m["method"], m["uri"], int(m["status"])))
        return entries

    def count(self, method: str, path_regex: str, *, status: int | None = None) -> int:
        """Requests whose method matches (case-insensitive, "*" for any) and whose path (no
        query string) matches `path_regex` with re.search; optionally only one status."""
        pattern = re.compile(path_regex)
        return sum(
            1
            for e in self.access_log()
            if (method == "*" or e.method == method.upper())
            and pattern.search(e.path)
            and (status is None or e.status == status)
        )

    def _sync_log(self) -> None:
        marker = secrets.token_hex(8)
        try:
            httpx.get(f"{self.url}{_SENTINEL}{marker}", timeout=5.0, verify=False)
        except httpx.TransportError:
            return
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if marker in self.access_log_path.read_text(errors="replace"):
                return
            time.sleep(0.005)
