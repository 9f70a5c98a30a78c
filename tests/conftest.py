"""Shared fixtures: real registries (fresh per test: one starts in ~50 ms).

    registry, registry2      anonymous
    basic_registry           htpasswd, user "alice", random password
    token_registry           token auth, user "bob", random password (.token_service counts)
    registry_factory         callable(auth="anonymous", **kw) -> started RegistryServer

    postgres                 the session's PostgreSQL cluster (started on first use)
    pg_url                   a fresh, empty PostgreSQL database's URL (password included)
    store_url                parametrized: an SQLite file path, then a PostgreSQL URL

Proxies are per test: `with CountingProxy(registry) as p:` (tests/support/proxy.py).

Fixtures that start a registry skip nothing: when docker-registry is missing they fail loudly
(run `make system-deps`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemonprocess import kill_leftovers
from support.postgres import PostgresCluster, postgres_cluster
from support.registry import REGISTRY_BIN, AuthMode, RegistryFactory, RegistryServer


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`regsyncd once` keeps a cache (engine/platform_memory.py): never in the real home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(autouse=True)
def _no_daemon_left() -> Iterator[None]:
    """Real `regsyncd serve` processes (support/daemonprocess.py) never outlive their test."""
    yield
    kill_leftovers()


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[RegistryFactory]:
    """Start registries on demand; all are stopped at teardown."""
    if shutil.which(REGISTRY_BIN) is None:
        pytest.fail(f"{REGISTRY_BIN} is not installed: run `make system-deps`")
    started: list[RegistryServer] = []

    def start(
        auth: AuthMode | str = AuthMode.ANONYMOUS,
        *,
        username: str | None = None,
        password: str | None = None,
        relative_urls: bool = False,
        tls: bool = False,
        delete: bool = True,
    ) -> RegistryServer:
        workdir = tmp_path / f"registry-{len(started)}"
        server = RegistryServer(
            auth, username=username, password=password, relative_urls=relative_urls,
            workdir=workdir, tls=tls, delete=delete,
        )
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def registry(registry_factory: RegistryFactory) -> RegistryServer:
    """An anonymous registry."""
    return registry_factory()


@pytest.fixture
def registry2(registry_factory: RegistryFactory) -> RegistryServer:
    """A second anonymous registry (e.g. the target)."""
    return registry_factory()


@pytest.fixture
def basic_registry(registry_factory: RegistryFactory) -> RegistryServer:
    """htpasswd basic auth; user "alice", password random per run."""
    return registry_factory(AuthMode.BASIC, username="alice")


@pytest.fixture
def token_registry(registry_factory: RegistryFactory) -> RegistryServer:
    """Token auth through `.token_service`; user "bob", password random per run."""
    return registry_factory(AuthMode.TOKEN, username="bob")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole session, stopped and deleted at its end."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(postgres: PostgresCluster) -> Iterator[str]:
    """A new empty database on the session's cluster, dropped after the test."""
    name = postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """`--db` for each engine: a fresh SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("pg_url"))
