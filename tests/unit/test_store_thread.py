"""The trio <-> DB-thread bridge: concurrency, cancellation, errors and the cost of one hop, on
SQLite and on PostgreSQL (the `db` fixture runs each test on both)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
from regsync.daemon.base.errors import DuplicateItemError
from regsync.daemon.settings import RegistrySettings
from regsync.daemon.store import Database, Repo
from regsync.daemon.store.records import RegistryRecord


@pytest.fixture
def db(store_url: str) -> Iterator[Database]:
    with Database.open(store_url) as database:
        yield database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "store.db") as database:
        yield database


def registry(name: str) -> RegistrySettings:
    return RegistrySettings(name, f"https://{name}.example", "user", "secret")


def names(db: Database) -> list[str]:
    return [r.name for r in db.run_sync(lambda r: r.list_registries())]


def creator(settings: RegistrySettings) -> Callable[[Repo], RegistryRecord]:
    return lambda repo: repo.create_registry(settings)


class Boom(Exception):
    """Not a regsync error: any exception type must come back as itself."""


async def test_many_concurrent_callers_each_get_their_own_result(db: Database) -> None:
    results: dict[int, RegistryRecord] = {}

    async def create(n: int) -> None:
        results[n] = await db.run(lambda r: r.create_registry(registry(f"r{n:03}")))

    async with trio.open_nursery() as nursery:
        for n in range(200):
            nursery.start_soon(create, n)
    assert {n: rec.name for n, rec in results.items()} == {n: f"r{n:03}" for n in range(200)}
    assert names(db) == [f"r{n:03}" for n in range(200)]


async def test_exceptions_propagate_with_their_type_and_roll_back(db: Database) -> None:
    await db.run(lambda r: r.create_registry(registry("a")))
    with pytest.raises(DuplicateItemError, match="'a' exists already"):
        await db.run(lambda r: r.create_registry(registry("a")))

    def half(repo: Repo) -> None:
        repo.create_registry(registry("b"))
        raise Boom("after a write")

    with pytest.raises(Boom, match="after a write"):
        await db.run(half)
    assert names(db) == ["a"]
    assert (await db.run(lambda r: r.get_registry("a"))).name == "a"


async def test_a_caller_cancelled_mid_operation_still_gets_the_whole_result(
    db: Database,
) -> None:
    """The write commits completely, the result reaches the caller, and only then does the
    cancellation take effect (at the caller's next checkpoint)."""
    entered, release = threading.Event(), threading.Event()
    got: list[RegistryRecord] = []

    def slow(repo: Repo) -> RegistryRecord:
        first = repo.create_registry(registry("one"))
        entered.set()
        release.wait(5)
        repo.create_registry(registry("two"))
        return first

    scope = trio.CancelScope()

    async def caller() -> None:
        with scope:
            got.append(await db.run(slow))
            await trio.sleep_forever()  # the pending cancellation lands here

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller)
        await trio.to_thread.run_sync(entered.wait)
        scope.cancel()
        await trio.sleep(0.05)  # shielded: the caller is still waiting, not cancelled
        assert got == []
        release.set()
    assert scope.cancelled_caught
    assert [r.name for r in got] == ["one"]
    assert names(db) == ["one", "two"]
    await db.run(lambda r: r.create_registry(registry("three")))  # the store keeps working
    assert names(db) == ["one", "three", "two"]


async def test_a_caller_cancelled_before_it_starts_does_nothing(db: Database) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await db.run(lambda r: r.create_registry(registry("never")))
    assert scope.cancelled_caught
    assert names(db) == []


async def test_operations_run_on_one_thread_in_order(db: Database) -> None:
    threads: set[int] = set()
    order: list[int] = []

    def record(n: int) -> None:
        threads.add(threading.get_ident())
        order.append(n)

    for n in range(20):
        await db.run(lambda _, n=n: record(n))  # type: ignore[misc]
    await trio.to_thread.run_sync(lambda: db.run_sync(lambda _: record(20)))
    assert order == list(range(21))
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_run_sync_on_the_db_thread_is_refused(db: Database) -> None:
    with pytest.raises(RuntimeError, match="deadlock"):
        db.run_sync(lambda _: db.run_sync(lambda r: r.list_registries()))


async def test_closed_store_fails_fast_under_trio(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "s.db")
    db.close()
    with pytest.raises(RuntimeError, match="closed"):
        await db.run(lambda r: r.list_registries())


@pytest.mark.parametrize("second", ["sqlite", "postgresql"])
async def test_two_stores_in_one_process_stay_apart(
    tmp_path: Path, second: str, request: pytest.FixtureRequest
) -> None:
    """Model classes are shared; each operation must still hit its own database (two files,
    or a file and a PostgreSQL database)."""
    other = str(tmp_path / "b.db") if second == "sqlite" else request.getfixturevalue("pg_url")
    with Database.open(tmp_path / "a.db") as a, Database.open(other) as b:
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(a.run, lambda r, n=n: r.create_registry(registry(f"a{n}")))
                nursery.start_soon(b.run, lambda r, n=n: r.create_registry(registry(f"b{n}")))
        assert sorted(names(a)) == sorted(f"a{n}" for n in range(20))
        assert sorted(names(b)) == sorted(f"b{n}" for n in range(20))


async def test_latency_per_call_is_measured(db: Database) -> None:
    """Prints the cost of one hop (run `pytest -s`); not asserted: machines differ."""
    await db.run(lambda r: r.create_registry(registry("hub")))
    calls = 300
    for label, fn in (
        ("empty transaction", lambda _: None),
        ("get_registry", lambda r: r.get_registry("hub")),
    ):
        start = time.perf_counter()
        for _ in range(calls):
            await db.run(fn)
        per_call = (time.perf_counter() - start) / calls * 1000
        engine = "postgresql" if db.location.postgres else "sqlite"
        print(f"store hop ({engine}), {label}: {per_call:.3f} ms per call ({calls} calls)")
        assert per_call > 0


def test_close_while_callers_keep_submitting_never_strands_one(tmp_path: Path) -> None:
    """Every call either completes or fails with "closed"; none waits forever."""
    db = Database.open(tmp_path / "s.db")
    outcomes: list[str] = []

    def hammer(n: int) -> None:
        for i in range(10_000):
            try:
                db.run_sync(creator(registry(f"t{n}-{i}")))
            except RuntimeError as exc:
                assert "closed" in str(exc)
                outcomes.append("closed")
                return
        outcomes.append("finished")

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.1)
    db.close()
    for worker in workers:
        worker.join(timeout=10)
    assert not any(worker.is_alive() for worker in workers)
    assert outcomes == ["closed"] * 4


def test_a_full_store_is_a_store_error_and_the_thread_keeps_serving(sqlite_db: Database) -> None:
    """SQLite's own SQLITE_FULL (its page cap lowered to what the file holds), through the
    real thread: a StoreError with SQLite's words, not the rollback's failure it hides."""
    from peewee import OperationalError
    from regsync.daemon.base.errors import StoreError
    from regsync.daemon.store.models import Registry

    def cap(repo: Repo) -> None:
        pages = Registry._meta.database.execute_sql("PRAGMA page_count").fetchone()[0]
        Registry._meta.database.execute_sql(f"PRAGMA max_page_count = {pages}")

    sqlite_db.run_sync(cap)
    big = [registry(f"r{i}") for i in range(2000)]

    def fill(repo: Repo) -> None:
        for settings in big:
            repo.create_registry(settings)

    with pytest.raises(StoreError, match="^the daemon's store failed: database or disk is full$"):
        sqlite_db.run_sync(fill)
    assert names(sqlite_db) == []  # rolled back whole; reads still work
    with pytest.raises(OperationalError):  # our own bug is not blamed on the disk
        sqlite_db.run_sync(lambda repo: Registry._meta.database.execute_sql("SELEC 1"))
    sqlite_db.run_sync(lambda repo: Registry._meta.database.execute_sql("PRAGMA max_page_count = 1073741823"))
    sqlite_db.run_sync(fill)  # space is back
    assert len(names(sqlite_db)) == 2000
