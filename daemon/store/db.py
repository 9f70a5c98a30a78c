"""The one thread that touches the store's database, and the bridge that lets trio tasks use it.

sqlite3 connections belong to the thread that opened them, and SQLite serialises writers anyway,
so the daemon owns one connection on one dedicated thread and sends it whole operations: a
function `fn(repo)`, run inside one transaction. Trio callers `await db.run(fn)`; the result comes
back through the trio token (`run_sync_soon` + `reschedule`: one cross-thread hop, no worker pool).
PostgreSQL (`--db postgresql://...`, see postgres.py) is served the same way: one connection, one
thread, one transaction per operation.

A store that cannot be written (disk full, read-only, I/O error; on PostgreSQL also a lost
connection) raises `StoreError` from `run`, for the caller to record or report; the thread keeps
serving (reads still work), and the next write succeeds once the admin has freed space (or the
server is back: a lost connection is reopened before the next operation).

Cancellation is all-or-nothing: a caller cancelled *before* its operation is queued gets
`trio.Cancelled` and nothing happened; once queued, the operation commits or rolls back as a
whole and its result (or exception) is handed to the caller regardless of cancellation, which
then takes effect at the caller's next checkpoint. No half-written operation, no result that an
abandoned caller should have acted on (a created execution id, say) silently dropped.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import outcome
import trio
from peewee import Database as PeeweeDatabase
from peewee import InterfaceError, OperationalError, PostgresqlDatabase, SqliteDatabase

from ..base.errors import StoreError
from . import postgres
from .location import MEMORY, StoreLocation, parse_location
from .migrations import migrate
from .models import MODELS
from .repo import Repo

T = TypeVar("T")

# peewee logs every query at DEBUG with its parameters, registry passwords among them: never let
# those records out, whatever level the daemon's logging is set to.
logging.getLogger("peewee").setLevel(logging.INFO)
# httpx logs each request's full URL at INFO: pre-signed blob URLs carry credentials in their
# query, and a line per request drowns the daemon's own log
logging.getLogger("httpx").setLevel(logging.WARNING)

PRAGMAS = {
    "journal_mode": "wal",  # readers never block the writer, and commits are cheap
    "foreign_keys": 1,  # ON DELETE RESTRICT / CASCADE are part of the schema's meaning
    "busy_timeout": 5000,  # another process (sqlite3 CLI, a backup) holding a lock briefly
    "synchronous": "normal",  # with WAL: durable across process crashes, fast commits
}

# Model classes are shared by every Database in the process; each operation holds this lock and
# binds them to its own connection if another Database used them last. One Database is the
# daemon's case (uncontended, bound once); tests open several.
_BIND_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class _Job:
    fn: Callable[[Repo], Any]
    deliver: Callable[[outcome.Outcome[Any]], None]


class Database:
    """The store: an SQLite file (or ":memory:") or a PostgreSQL database, served by its own
    thread. Use `open()`; `path` is the location safe to print (no password)."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time):
        self.location: StoreLocation = parse_location(str(path))
        self.path = self.location.shown
        self.schema_version = 0
        self._db: PeeweeDatabase
        self._locks: postgres.SessionLocks | None = None
        if self.location.postgres:
            self._db = postgres.database(self.location)
            self._locks = postgres.SessionLocks(self._db)
        else:
            self._db = SqliteDatabase(None, thread_safe=False, autoconnect=False)
            self._db.init(self.path, pragmas=PRAGMAS)
        self._repo = Repo(clock=clock, presence=self._locks)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = True
        self._thread: threading.Thread | None = None

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> Database:
        """Create the file 0600 if needed (SQLite), connect on a new thread and migrate the
        schema.

        Raises:
            StoreError: the PostgreSQL server cannot be reached or refused the credentials.
            (or whatever else connecting or migrating raised; the thread is gone by then)"""
        db = cls(path, clock=clock)
        db._start()
        return db

    async def run(self, fn: Callable[[Repo], T]) -> T:
        """Run `fn(repo)` in one transaction on the DB thread (see module docstring for
        cancellation). Exceptions from `fn` roll back and propagate unchanged."""
        await trio.lowlevel.checkpoint_if_cancelled()
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()

        def deliver(result: outcome.Outcome[Any]) -> None:
            try:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)
            except trio.RunFinishedError:  # the trio run ended first: nobody is waiting
                pass

        self._submit(_Job(fn, deliver))
        value = await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)
        return cast(T, value)

    def run_sync(self, fn: Callable[[Repo], T]) -> T:
        """`run` for threads outside trio (start-up, tests, scripts): blocks until done."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("Database.run_sync called on the DB thread: it would deadlock")
        done = threading.Event()
        box: list[outcome.Outcome[Any]] = []

        def deliver(result: outcome.Outcome[Any]) -> None:
            box.append(result)
            done.set()

        self._submit(_Job(fn, deliver))
        done.wait()
        return cast(T, box[0].unwrap())

    def close(self) -> None:
        """Finish the queued operations, close the connection and stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(None)
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # The DB thread -----------------------------------------------------------------------------
    def _submit(self, job: _Job) -> None:
        with self._lock:  # jobs never land behind the stop sentinel: they would wait forever
            if self._closed:
                raise RuntimeError(f"the store {self.path!r} is closed")
            self._jobs.put(job)

    def _start(self) -> None:
        if not self.location.postgres and self.path != MEMORY:
            _create_private(Path(self.path))
        started: list[outcome.Outcome[int]] = []
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(started, ready), name="regsync-db", daemon=True
        )
        self._thread.start()
        ready.wait()
        self.schema_version = started[0].unwrap()
        self._closed = False

    def _serve(self, started: list[outcome.Outcome[int]], ready: threading.Event) -> None:
        started.append(outcome.capture(self._connect))
        ready.set()
        if isinstance(started[0], outcome.Error):
            return
        try:
            while (job := self._jobs.get()) is not None:
                job.deliver(outcome.capture(self._execute, job.fn))
        finally:
            self._stop_taking_jobs()
            self._db.close()

    def _stop_taking_jobs(self) -> None:
        """Refuse new jobs and fail queued ones, so no caller waits forever on a dead thread."""
        with self._lock:
            self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.deliver(outcome.Error(RuntimeError(f"the store {self.path!r} is closed")))

    def _connect(self) -> int:
        try:
            self._open_connection()
            with _BIND_LOCK:
                self._bind()
                version = migrate(self._db)
        except BaseException:
            self._db.close()
            raise
        if not self.location.postgres and self.path != MEMORY:
            for suffix in ("-wal", "-shm"):  # SQLite copies the file's mode; make sure
                _tighten(Path(self.path + suffix))
        return version

    def _open_connection(self) -> None:
        """Connect; on PostgreSQL a refused or unreachable server is a `StoreError` that says
        where (without the password) and why."""
        if not isinstance(self._db, PostgresqlDatabase):
            self._db.connect()
            return
        try:
            self._db.connect()
        except (OperationalError, InterfaceError) as exc:
            cause = postgres.host_failure(exc) or exc
            raise StoreError(
                f"cannot connect to the store {self.path}: {postgres.describe(cause, self.location)}"
            ) from None  # a driver's exception is not ours to print: it could quote the DSN

    def _execute(self, fn: Callable[[Repo], T]) -> T:
        try:
            if isinstance(self._db, PostgresqlDatabase) and postgres.lost(self._db):
                self._db.close()
                self._open_connection()  # the server is back, or this operation fails too
                if self._locks is not None:
                    self._locks.reclaim()  # this daemon is alive again for the others
            with _BIND_LOCK:
                self._bind()
                with self._db.atomic():
                    return fn(self._repo)
        except (OperationalError, InterfaceError, sqlite3.OperationalError) as exc:
            if self.location.postgres:
                lost = postgres.host_failure(exc)
                if lost is None:
                    raise
                raise StoreError(
                    f"the daemon's store failed: {postgres.describe(lost, self.location)}"
                ) from None
            cause = _host_failure(exc)
            if cause is None:
                raise  # our bug (SQL, schema): not the host's problem
            raise StoreError(f"the daemon's store failed: {cause}") from exc

    def _bind(self) -> None:
        """Point the shared model classes at this connection unless they are already (binding
        costs ~0.2 ms, a third of an operation: do it only when another Database was used)."""
        if MODELS[0]._meta.database is not self._db:
            self._db.bind(MODELS, bind_refs=False, bind_backrefs=False)


#: SQLite's primary result codes that mean the host cannot take the write (sqlite3.h)
_HOST_FAILURES = {
    3: "PERM", 5: "BUSY", 6: "LOCKED", 7: "NOMEM", 8: "READONLY", 10: "IOERR", 11: "CORRUPT",
    13: "FULL", 14: "CANTOPEN",
}


def _host_failure(exc: BaseException) -> sqlite3.Error | None:
    """The SQLite error behind `exc` when it is the host's (disk full, read-only, I/O), else
    None. A failed write ends SQLite's transaction itself, so peewee's rollback then fails too
    ("cannot rollback"): the cause is the error that failure hides, further down the chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlite_errorcode", None)
        if isinstance(current, sqlite3.Error) and code is not None and code & 0xFF in (
            _HOST_FAILURES
        ):
            return current  # its text is SQLite's own words: no query, no parameters
        current = current.__cause__ or current.__context__
    return None


def _create_private(path: Path) -> None:
    """Create the database file owner-only before SQLite opens it (registry passwords live
    there); tighten an existing file that others can read."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _tighten(path: Path) -> None:
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except FileNotFoundError:
        pass
