"""The schema's history: an ordered list of migrations, each applied once, in its own transaction.

Migration N (1-based) brings the schema from version N-1 to N. They are plain SQL, frozen once
released: models change, the steps that built an existing user's file must not. Append new steps;
never edit or reorder old ones. `migrate` records the version in `schema_version` with the step,
so a crash between steps resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from sqlite3 import Cursor

from peewee import SqliteDatabase

from ..errors import RegsyncError

Migration = Callable[[SqliteDatabase], None]

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY)"

_INITIAL = [
    """CREATE TABLE registry (
        id INTEGER NOT NULL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        username TEXT,
        password TEXT,
        insecure INTEGER NOT NULL DEFAULT 0,
        ca_file TEXT,
        qps REAL)""",
    """CREATE TABLE task (
        id INTEGER NOT NULL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        source_registry_id INTEGER NOT NULL REFERENCES registry (id) ON DELETE RESTRICT,
        source_repository TEXT NOT NULL,
        target_registry_id INTEGER NOT NULL REFERENCES registry (id) ON DELETE RESTRICT,
        target_repository TEXT NOT NULL,
        include TEXT NOT NULL DEFAULT '[]',
        exclude TEXT NOT NULL DEFAULT '[]',
        semver TEXT,
        latest INTEGER,
        architectures TEXT NOT NULL DEFAULT '[]',
        platforms TEXT NOT NULL DEFAULT '[]',
        enabled INTEGER NOT NULL DEFAULT 1,
        cron_expression TEXT)""",
    "CREATE INDEX task_source_registry_id ON task (source_registry_id)",
    "CREATE INDEX task_target_registry_id ON task (target_registry_id)",
    """CREATE TABLE execution (
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        task_id INTEGER NOT NULL REFERENCES task (id) ON DELETE CASCADE,
        "trigger" TEXT NOT NULL,
        status TEXT NOT NULL,
        started REAL NOT NULL,
        finished REAL,
        tags_total INTEGER NOT NULL DEFAULT 0,
        tags_copied INTEGER NOT NULL DEFAULT 0,
        tags_skipped INTEGER NOT NULL DEFAULT 0,
        tags_failed INTEGER NOT NULL DEFAULT 0,
        blobs_copied INTEGER NOT NULL DEFAULT 0,
        blobs_mounted INTEGER NOT NULL DEFAULT 0,
        blobs_skipped INTEGER NOT NULL DEFAULT 0,
        bytes_copied INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        parent_id INTEGER REFERENCES execution (id) ON DELETE SET NULL)""",
    "CREATE INDEX execution_task_id ON execution (task_id)",
    "CREATE INDEX execution_parent_id ON execution (parent_id)",
    """CREATE TABLE tag_result (
        id INTEGER NOT NULL PRIMARY KEY,
        execution_id INTEGER NOT NULL REFERENCES execution (id) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        tag TEXT NOT NULL,
        outcome TEXT NOT NULL,
        digest TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        error_kind TEXT NOT NULL DEFAULT '')""",
    "CREATE UNIQUE INDEX tag_result_execution_id_tag ON tag_result (execution_id, tag)",
    """CREATE TABLE log_line (
        id INTEGER NOT NULL PRIMARY KEY,
        execution_id INTEGER NOT NULL REFERENCES execution (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        time REAL NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        rule TEXT NOT NULL DEFAULT '')""",
    "CREATE UNIQUE INDEX log_line_execution_id_seq ON log_line (execution_id, seq)",
]

# Stats ("today", running) and start-up recovery filter executions by status and finish time.
_STATUS_INDEXES = [
    "CREATE INDEX execution_status ON execution (status)",
    "CREATE INDEX execution_finished ON execution (finished)",
]

# The scheduler needs to know since when a task exists (a run missed while the daemon was down is
# caught up once). Tasks from before this step count as created at the upgrade.
_TASK_CREATED = [
    "ALTER TABLE task ADD COLUMN created REAL NOT NULL DEFAULT 0",
    "UPDATE task SET created = CAST(strftime('%s', 'now') AS REAL)",
]

# Webhooks (config notifications:, the NotificationService) and their last delivery's result.
_NOTIFICATIONS = [
    """CREATE TABLE notification (
        id INTEGER NOT NULL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        events TEXT NOT NULL DEFAULT '[]',
        tasks TEXT NOT NULL DEFAULT '[]',
        secret TEXT,
        format TEXT NOT NULL DEFAULT 'json',
        last_event TEXT NOT NULL DEFAULT '',
        last_time REAL,
        last_ok INTEGER NOT NULL DEFAULT 0,
        last_code INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        last_attempts INTEGER NOT NULL DEFAULT 0)""",
]


# Glob tasks (issue 13): a source's excluded repositories, and per-tag results that carry their
# source repository (one execution covers many, so a tag name alone is no longer unique).
_REPOSITORY_SCOPE = [
    "ALTER TABLE task ADD COLUMN source_exclude TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE tag_result ADD COLUMN repository TEXT NOT NULL DEFAULT ''",
    "DROP INDEX tag_result_execution_id_tag",
    "CREATE UNIQUE INDEX tag_result_execution_id_repository_tag ON tag_result"
    + " (execution_id, repository, tag)",
]


def _sql(db: SqliteDatabase, statement: str, params: tuple[object, ...] = ()) -> Cursor:
    return db.execute_sql(statement, params)  # type: ignore[no-untyped-call,no-any-return]


def _run(statements: Sequence[str]) -> Migration:
    def step(db: SqliteDatabase) -> None:
        for statement in statements:
            _sql(db, statement)

    return step


#: index i holds the step from version i to version i + 1
MIGRATIONS: tuple[Migration, ...] = (
    _run(_INITIAL),
    _run(_STATUS_INDEXES),
    _run(_TASK_CREATED),
    _run(_NOTIFICATIONS),
    _run(_REPOSITORY_SCOPE),  # keep last: later steps go after it
)
LATEST = len(MIGRATIONS)


def schema_version(db: SqliteDatabase) -> int:
    """The version a database file is at; 0 for a new, empty file."""
    _sql(db, _VERSION_TABLE)
    row = _sql(db, "SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(
    db: SqliteDatabase,
    *,
    target: int = LATEST,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Apply the missing steps up to `target`; returns the version reached.

    Raises:
        RegsyncError: the file was written by a newer regsyncd (downgrades are not supported:
            refusing beats silently misreading columns).
    """
    current = schema_version(db)
    if current > len(migrations):
        raise RegsyncError(
            f"the database schema is at version {current}, newer than this regsyncd knows "
            f"({len(migrations)}); use a newer regsyncd or another --db file"
        )
    for version in range(current + 1, target + 1):
        with db.atomic():
            migrations[version - 1](db)
            _sql(db, "INSERT INTO schema_version (version) VALUES (?)", (version,))
    return max(current, target)
