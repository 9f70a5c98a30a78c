"""The schema's migrations on both engines: from an empty database and from older versions,
the same tables on SQLite and PostgreSQL, and the models matching what the SQL built."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from peewee import Database as PeeweeDatabase
from peewee import SqliteDatabase
from regsync.daemon.base.errors import RegsyncError
from regsync.daemon.settings import Endpoint, RegistrySettings
from regsync.daemon.store import Database, postgres
from regsync.daemon.store.location import parse_location
from regsync.daemon.store.migrations import LATEST, migrate, schema_version
from regsync.daemon.store.models import MODELS


def _raw(store_url: str) -> PeeweeDatabase:
    """A plain peewee connection to the store, below `Database` (as an older regsyncd left it)."""
    location = parse_location(store_url)
    if location.postgres:
        raw = postgres.database(location)
        raw.connect()
        return raw
    return SqliteDatabase(store_url, pragmas={"foreign_keys": 1})


@pytest.mark.parametrize("old_version", [1, LATEST - 1])
def test_migrating_from_an_older_version_keeps_the_data(store_url: str, old_version: int) -> None:
    """From the first schema and from the previous one, on each engine."""
    old = _raw(store_url)
    assert migrate(old, target=old_version) == old_version
    _sql(old, "INSERT INTO registry (name, url) VALUES ('hub', 'https://r.example')")
    _sql(
        old,
        "INSERT INTO task (name, source_registry_id, source_repository, target_registry_id,"
        " target_repository) VALUES ('t', 1, 'a', 1, 'b')"
    )
    if old_version == 1:
        assert "execution_status" not in _indexes(old)
    old.close()

    before = time.time()
    with Database.open(store_url) as db:
        assert db.schema_version == LATEST == 11
        assert db.run_sync(lambda r: r.get_registry("hub")).settings.url == "https://r.example"
        assert db.run_sync(lambda r: r.get_task("t")).rule.target == Endpoint("hub", "b")
        created = db.run_sync(lambda r: r.task_created("t")).timestamp()
        if old_version < 3:  # existing tasks: created at the upgrade
            assert before - 1 <= created <= time.time() + 1
        # the ids continue after the rows an older regsyncd wrote
        db.run_sync(lambda r: r.create_registry(RegistrySettings("two", "https://2.example")))
        assert len(db.run_sync(lambda r: r.list_registries())) == 2
    raw = _raw(store_url)
    assert {"execution_status", "execution_finished"} <= _indexes(raw)
    versions = [row[0] for row in _sql(raw, "SELECT version FROM schema_version")]
    assert sorted(versions) == list(range(1, LATEST + 1))
    raw.close()


def test_a_newer_schema_is_refused(store_url: str) -> None:
    raw = _raw(store_url)
    _sql(raw, "CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY)")
    _sql(raw, "INSERT INTO schema_version VALUES (99)")
    raw.close()
    with pytest.raises(RegsyncError, match="version 99, newer than this regsyncd knows"):
        Database.open(store_url)


def test_migrated_schema_matches_the_models(store_url: str) -> None:
    """Migrations are SQL and models are Python: the columns must agree (on each engine)."""
    raw = _raw(store_url)
    migrate(raw)
    assert schema_version(raw) == LATEST
    for model in MODELS:
        table = model._meta.table_name
        columns = {c.name for c in raw.get_columns(table)}
        assert columns == {f.column_name for f in model._meta.sorted_fields}, table
    raw.close()


def test_both_engines_build_the_same_tables_and_indexes(tmp_path: Path, pg_url: str) -> None:
    """One schema, written twice: the same tables, columns, NULLs and named indexes."""
    shapes = []
    for url in (str(tmp_path / "s.db"), pg_url):
        raw = _raw(url)
        migrate(raw)
        shape = {}
        for table in sorted(t for t in raw.get_tables() if not t.startswith("sqlite_")):
            columns = {(c.name, c.null) for c in raw.get_columns(table)}
            indexes = {(i.name, tuple(i.columns), i.unique) for i in raw.get_indexes(table)
                       if not i.name.endswith(("_pkey", "_key")) and "autoindex" not in i.name}
            shape[table] = (columns, indexes)
        shapes.append(shape)
        raw.close()
    assert shapes[0] == shapes[1]


def _sql(raw: PeeweeDatabase, statement: str) -> Any:
    return raw.execute_sql(statement)  # type: ignore[no-untyped-call]


def _indexes(raw: PeeweeDatabase) -> set[str]:
    return {index.name for table in raw.get_tables() for index in raw.get_indexes(table)}


def test_daemons_starting_together_on_postgresql_migrate_once(pg_url: str) -> None:
    """An advisory lock makes them take turns: one migrates, the others find it done. (Each
    on its own connection, as separate daemons are; all released at once.)"""
    import threading

    errors: list[BaseException] = []
    versions: list[int] = []
    gate = threading.Barrier(4)

    def start() -> None:
        raw = _raw(pg_url)
        try:
            gate.wait()
            versions.append(migrate(raw))
        except Exception as exc:  # noqa: BLE001 (every thread's failure, asserted below)
            errors.append(exc)
        finally:
            raw.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and versions == [LATEST] * 4
    raw = _raw(pg_url)
    assert sorted(row[0] for row in _sql(raw, "SELECT version FROM schema_version")) == list(
        range(1, LATEST + 1))
    raw.close()
