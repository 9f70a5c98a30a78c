"""PostgreSQL's own failure modes: a server that cannot be reached, credentials it refuses, a
connection it cuts; and the password of a `--db` URL, which nothing may print."""

from __future__ import annotations

import contextlib
import socket
import traceback

import pytest
from regsync.daemon.base.errors import ConfigError, StoreError
from regsync.daemon.settings import RegistrySettings
from regsync.daemon.store import Database
from regsync.daemon.store.location import parse_location
from support.postgres import PostgresCluster


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _everything_said(exc: BaseException) -> str:
    """The error as a user or a log could ever see it: each exception of the chain, with its
    arguments (a traceback's source lines are the test's own, password literal included)."""
    said: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        said += traceback.format_exception_only(current)
        said.append(repr(current.args))
        current = current.__cause__ or current.__context__
    return "".join(said)


# The URL ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cr3t@db.example:5433/regsync", "postgresql://u:***@db.example:5433/regsync"),
        ("postgres://u@db.example/regsync", "postgres://u@db.example/regsync"),
        ("postgresql://u@h/d?sslmode=require&password=s3cr3t",
         "postgresql://u@h/d?sslmode=require&password=***"),
        ("postgresql://u:p%40ss@[::1]:5432/d", "postgresql://u:***@[::1]:5432/d"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    location = parse_location(url)
    assert location.postgres and location.shown == shown
    assert location.scrub(f"failed for {url}") == f"failed for {shown}"
    if location.password:
        assert location.password not in repr(location)
        assert location.scrub(f"said {location.password}") == "said ***"


def test_a_path_is_a_sqlite_file() -> None:
    location = parse_location("/var/lib/regsync/regsync.db")
    assert not location.postgres and location.path == location.shown


@pytest.mark.parametrize("url", ["postgresql://h", "postgresql://u:pw@h:port/db",
                                 "postgresql://u:pw@/db"])
def test_a_url_without_host_or_database_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_location(url)
    assert "pw" not in str(caught.value)


# Connecting ------------------------------------------------------------------------------------
def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql://regsync:Hunter2Secret@127.0.0.1:{_closed_port()}/regsync"
    with pytest.raises(StoreError) as caught:
        Database.open(url)
    message = str(caught.value)
    assert message.startswith("cannot connect to the store postgresql://regsync:***@127.0.0.1:")
    assert "Connection refused" in message
    assert "Hunter2Secret" not in _everything_said(caught.value)


def test_wrong_credentials_are_a_clear_error_without_the_password(
    postgres: PostgresCluster, pg_url: str
) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with pytest.raises(StoreError) as caught:
        Database.open(postgres.url(name, password="NotThePassword9"))
    assert "password authentication failed for user \"regsync\"" in str(caught.value)
    assert "NotThePassword9" not in _everything_said(caught.value)


def test_an_unknown_database_is_named(postgres: PostgresCluster) -> None:
    with pytest.raises(StoreError, match='database "nosuchdb" does not exist'):
        Database.open(postgres.url("nosuchdb"))


def test_the_store_names_itself_without_the_password(
    postgres: PostgresCluster, pg_url: str
) -> None:
    with Database.open(pg_url) as db:
        assert db.path == pg_url.replace(postgres.password, "***")


# Losing the connection -------------------------------------------------------------------------
def test_a_lost_connection_fails_one_operation_and_the_next_reconnects(
    postgres: PostgresCluster, pg_url: str
) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with Database.open(pg_url) as db:
        db.run_sync(lambda r: r.create_registry(RegistrySettings("hub", "https://h.example")))
        assert postgres.terminate(name) == 1  # the server restarts, as the daemon sees it
        with pytest.raises(StoreError, match="the daemon's store failed: .*terminat") as caught:
            db.run_sync(lambda r: r.list_registries())
        assert postgres.password not in _everything_said(caught.value)
        assert [r.name for r in db.run_sync(lambda r: r.list_registries())] == ["hub"]


def test_while_the_server_refuses_every_operation_is_a_store_error(
    postgres: PostgresCluster, pg_url: str
) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with Database.open(pg_url) as db, contextlib.closing(postgres.admin()) as admin:
        with admin.cursor() as cur:
            cur.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        postgres.terminate(name)
        for _ in range(3):  # the first finds the connection cut, the next cannot reconnect
            with pytest.raises(StoreError) as caught:
                db.run_sync(lambda r: r.list_registries())
        assert "cannot connect to the store" in str(caught.value)
        assert "not currently accepting connections" in str(caught.value)
        with admin.cursor() as cur:
            cur.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert db.run_sync(lambda r: r.list_registries()) == []  # the thread served on


def test_the_password_can_stay_out_of_the_url(
    postgres: PostgresCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq's own settings work ($PGPASSWORD here; ~/.pgpass likewise)."""
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    bare = pg_url.replace(f":{postgres.password}@", "@")
    with Database.open(bare) as db:
        assert db.path == bare and db.run_sync(lambda r: r.list_registries()) == []
