"""A throwaway PostgreSQL cluster for the tests (Debian's `postgresql` package).

One cluster per test session (initdb + pg_ctl take ~2 s), one fresh database per test (CREATE
DATABASE takes ~30 ms with fsync off). The cluster listens on a loopback port and on a socket in
its own temp dir; initdb refuses root, so as root the server runs as the `postgres` user.

TCP connections need a password (scram-sha-256): tests connect as the role `regsync` with the
random `PASSWORD` below, so "the password never shows" is checked against a real one. The
superuser connects over the socket without one, to create and drop databases.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2


def _bindir() -> Path:
    """Debian's newest installed server (15 on bookworm)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


BINDIR = _bindir()
ROLE = "regsync"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running cluster; `database()` hands out a new empty database's URL."""

    root: Path
    port: int
    password: str
    _counter: itertools.count[int]

    @property
    def socket_dir(self) -> str:
        return str(self.root / "sock")

    def url(self, name: str, *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{ROLE}:{secret}@127.0.0.1:{self.port}/{name}"

    def admin(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        conn = psycopg2.connect(host=self.socket_dir, port=self.port, user="postgres",
                                dbname=dbname)
        conn.autocommit = True
        return conn

    def create_database(self) -> str:
        """A new empty database owned by `regsync`; returns its name."""
        name = f"t{next(self._counter)}"
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} OWNER {ROLE} STRATEGY FILE_COPY")
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def terminate(self, name: str) -> int:
        """Cut every client connection to database `name` (a server restart, as a client sees
        it); returns how many were cut."""
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def stop(self) -> None:
        _as_owner([str(BINDIR / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                   "-w", "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a cluster in a temp dir; stop and delete it at exit."""
    if not (BINDIR / "initdb").exists():
        raise RuntimeError(f"{BINDIR}/initdb is missing: run `make system-deps` (postgresql)")
    root = Path(tempfile.mkdtemp(prefix="regsync-pg-"))
    (root / "sock").mkdir()
    _give_to_owner(root)
    _give_to_owner(root / "sock")
    password = secrets.token_urlsafe(12)
    port = _free_port()
    cluster = PostgresCluster(root, port, password, itertools.count(1))
    try:
        _as_owner([str(BINDIR / "initdb"), "-D", str(root / "data"), "-U", "postgres",
                   "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                   "--locale=C.UTF-8", "--no-sync"])
        options = (f"-p {port} -k {cluster.socket_dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        _as_owner([str(BINDIR / "pg_ctl"), "-D", str(root / "data"), "-o", options,
                   "-l", str(root / "log"), "-w", "start"])
        with contextlib.closing(cluster.admin()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", (password,))
        yield cluster
    finally:
        cluster.stop()


def _owner() -> str | None:
    """The user the server runs as: `postgres` when we are root (initdb refuses root)."""
    return "postgres" if os.geteuid() == 0 else None


def _give_to_owner(path: Path) -> None:
    owner = _owner()
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _as_owner(command: list[str], *, check: bool = True) -> None:
    owner = _owner()
    if owner is not None:
        command = ["runuser", "-u", owner, "--", *command]
    done = subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          cwd="/", text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{command}: exit {done.returncode}: {done.stderr.strip()}")
