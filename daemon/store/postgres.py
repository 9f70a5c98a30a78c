"""PostgreSQL as the store's engine: connecting, and telling the server's trouble from our bugs.

The DB thread's design does not change: one connection, owned by the one thread, each operation
one transaction. What PostgreSQL adds is a network between the daemon and its data. A server that
restarts, a dropped connection or a full disk on the server fail the operation in flight as
`StoreError` (the executor keeps what it could not write and tries again); the next operation
reconnects first, so the daemon carries on once the server is back.

psycopg2's messages name the host, port, user and database, never the password; they are scrubbed
of it anyway before they go anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg2
from peewee import PostgresqlDatabase

from .location import StoreLocation

#: libpq settings unless the URL sets them: a host that does not answer is an error within
#: seconds, not a start-up that hangs; a dead server is noticed on an idle connection too
_DEFAULTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "application_name": "regsyncd",
}


def database(location: StoreLocation) -> PostgresqlDatabase:
    """A peewee database for `location`, not connected yet (the DB thread connects)."""
    params: dict[str, Any] = {
        key: value for key, value in _DEFAULTS.items() if f"{key}=" not in location.url
    }
    url = "postgresql://" + location.url.split("://", 1)[1]  # peewee reads this scheme as a DSN
    return PostgresqlDatabase(url, thread_safe=False, autoconnect=False, **params)


#: pg_advisory_lock(key, daemon id): held by each daemon's session for its life
_DAEMON_LOCKS = 0x72736431  # "rsd1"
#: pg_try_advisory_lock(key, 0): held by the session of the daemon that fires the cron ticks
_LEADER_LOCK = 0x72736432  # "rsd2"


class SessionLocks:
    """Presence on PostgreSQL: a daemon is alive while its session holds its advisory lock
    (daemons.py says why that needs no timeout). After a reconnect the lock is taken again."""

    shared = True  # other daemons may run this store's executions

    def __init__(self, db: PostgresqlDatabase) -> None:
        self._db = db
        self.claimed: int | None = None

    def claim(self, daemon_id: int) -> None:
        self._sql("SELECT pg_advisory_lock(%s, %s)", _DAEMON_LOCKS, daemon_id)
        self.claimed = daemon_id

    def reclaim(self) -> None:
        """On a new connection: hold this daemon's lock again."""
        if self.claimed is not None:
            self.claim(self.claimed)

    def alive(self, daemon_ids: Iterable[int]) -> set[int]:
        alive = set()
        for daemon_id in daemon_ids:
            if daemon_id == self.claimed:
                continue
            if self._sql("SELECT pg_try_advisory_lock(%s, %s)", _DAEMON_LOCKS, daemon_id):
                self._sql("SELECT pg_advisory_unlock(%s, %s)", _DAEMON_LOCKS, daemon_id)
            else:
                alive.add(daemon_id)
        return alive

    def lead(self) -> bool:
        """Become the scheduler's leader if no other session is; False when one is. (Not
        retaken after a reconnect: `leading` then says so, and the leader loop tries again.)"""
        return self._sql("SELECT pg_try_advisory_lock(%s, 0)", _LEADER_LOCK)

    def leading(self) -> bool:
        """Whether this session still holds the leader's lock (a lost connection drops it)."""
        return self._sql(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid() AND classid = %s AND objid = 0 AND objsubid = 2)",
            _LEADER_LOCK)

    def _sql(self, statement: str, *params: int) -> bool:
        row = self._db.execute_sql(statement, params).fetchone()  # type: ignore[no-untyped-call]
        return bool(row[0]) if row and row[0] is not None else False


def host_failure(exc: BaseException) -> BaseException | None:
    """The driver's error behind `exc` when the server or the network failed (connection
    refused or lost, server shutting down, disk full, too many connections), else None: an
    integrity or syntax error is a bug of ours or a conflict the caller handles."""
    found: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, psycopg2.OperationalError | psycopg2.InterfaceError):
            found.append(current)
        current = current.__cause__ or current.__context__
    # a lost connection fails peewee's rollback too ("connection already closed", an
    # InterfaceError): the OperationalError under it says why
    found.sort(key=lambda error: not isinstance(error, psycopg2.OperationalError))
    return found[0] if found else None


def lost(db: PostgresqlDatabase) -> bool:
    """Whether the connection is gone (psycopg2 marks it closed after a fatal error)."""
    if db.is_closed():
        return True
    return bool(db.connection().closed)  # type: ignore[no-untyped-call]


def describe(error: BaseException, location: StoreLocation) -> str:
    """One line for a user: the driver's message (multi-line, with hints) made single."""
    text = " ".join(str(error).split())
    return location.scrub(text) or type(error).__name__
