"""The store's operations and the file it keeps, on both engines: real SQLite files, and a real
PostgreSQL server (the session's throwaway cluster, a fresh database per test). Migrations are
in test_store_migrations.py.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from regsync.daemon.base.errors import ConflictError, DuplicateItemError, UnknownItemError
from regsync.daemon.engine.events import Counters, LogEvent, Outcome, TagResult
from regsync.daemon.settings import Endpoint, RegistrySettings, SyncRule, TagFilter
from regsync.daemon.store import Database, Repo
from regsync.daemon.store.migrations import LATEST
from regsync.daemon.store.records import ExecutionQuery, ExecutionStatus, Trigger
from regsync.daemon.values.prunelimit import PruneLimit

NOON = datetime(2030, 5, 17, 12, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


class Clock:
    """The store's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = NOON

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(store_url: str, clock: Clock) -> Iterator[Database]:
    with Database.open(store_url, clock=clock) as database:
        database.run_sync(_seed)
        yield database


def _seed(repo: Repo) -> None:
    repo.create_registry(hub())
    repo.create_registry(RegistrySettings("local", "http://127.0.0.1:5000"))
    repo.create_registry(RegistrySettings("spare", "https://spare.example"))


def hub(**changes: object) -> RegistrySettings:
    values: dict[str, object] = {
        "name": "hub",
        "url": "https://registry-1.docker.io",
        "username": "alice",
        "password": "${HUB_PASSWORD}",
        "qps": 2.5,
    }
    return RegistrySettings(**{**values, **changes})  # type: ignore[arg-type]


def rule(name: str = "nginx", **changes: object) -> SyncRule:
    values: dict[str, object] = {
        "name": name,
        "source": Endpoint("hub", "library/nginx"),
        "target": Endpoint("local", "mirror/nginx"),
        "tags": TagFilter(include=(r"^1\.2\d",), exclude=("alpine$",), semver=">=1.20", latest=3),
        "architectures": ("amd64", "arm64"),
        "platforms": ("linux/arm/v7",),
        "cron_expression": "0 2 * * *",
    }
    return SyncRule(**{**values, **changes})  # type: ignore[arg-type]


def result(tag: str, outcome: Outcome, **changes: str) -> TagResult:
    return TagResult(rule="nginx", tag=tag, outcome=outcome, **changes)


# Registries ------------------------------------------------------------------------------------
def test_registry_round_trip_keeps_every_field_and_the_password_reference(db: Database) -> None:
    record = db.run_sync(lambda r: r.get_registry("hub"))
    assert record.settings == hub()
    assert record.settings.password == "${HUB_PASSWORD}"
    assert record.password_set
    names = [r.name for r in db.run_sync(lambda r: r.list_registries())]
    assert names == ["hub", "local", "spare"]


def test_duplicate_registry(db: Database) -> None:
    with pytest.raises(DuplicateItemError, match="'hub' exists already"):
        db.run_sync(lambda r: r.create_registry(hub(url="https://other.example")))


def test_unknown_registry(db: Database) -> None:
    with pytest.raises(UnknownItemError, match="no registry named 'nope'"):
        db.run_sync(lambda r: r.get_registry("nope"))
    with pytest.raises(UnknownItemError):
        db.run_sync(lambda r: r.delete_registry("nope"))


def test_update_registry_keeps_or_replaces_the_password(db: Database) -> None:
    changed = hub(password=None, insecure=True)
    kept = db.run_sync(lambda r: r.update_registry(changed, keep_password=True))
    assert kept.settings.insecure
    assert kept.settings.password == "${HUB_PASSWORD}" and not kept.password_dropped
    cleared = db.run_sync(lambda r: r.update_registry(changed, keep_password=False))
    assert cleared.settings.password is None
    assert not cleared.password_set and not cleared.password_dropped


@pytest.mark.parametrize("edit", [{"url": "http://attacker.example"},
                                  {"url": "http://registry-1.docker.io"},  # a downgrade
                                  {"url": "https://registry-1.docker.io:444"},
                                  {"username": "mallory"}, {"username": None}])
def test_a_password_stays_bound_to_its_url_and_user(db: Database, edit: dict[str, Any]) -> None:
    """`registries edit --url http://attacker` then `registries test` sent the stored password
    to the new host: an edit that moves the registry drops it (and says so)."""
    before = db.run_sync(lambda r: r.get_registry("hub")).settings
    moved = replace(before, password=None, **edit)
    record = db.run_sync(lambda r: r.update_registry(moved, keep_password=True))
    assert record.settings.password is None and record.password_dropped
    stored = db.run_sync(lambda r: r.get_registry("hub"))
    assert not stored.password_set and not stored.password_dropped


def test_upsert_reports_a_password_it_removed(db: Database) -> None:
    record = db.run_sync(lambda r: r.upsert_registry(hub(password=None, username=None)))
    assert record is not None and record.password_dropped
    again = db.run_sync(lambda r: r.upsert_registry(hub(password=None, username=None)))
    assert again is not None and not again.password_dropped  # nothing was left to remove


def test_registry_used_by_and_delete_in_use(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule("b-task")))
    db.run_sync(lambda r: r.create_task(rule("a-task")))
    assert db.run_sync(lambda r: r.get_registry("hub")).used_by == ("a-task", "b-task")
    assert db.run_sync(lambda r: r.get_registry("spare")).used_by == ()
    with pytest.raises(ConflictError, match="registry 'hub' is used by tasks: a-task, b-task"):
        db.run_sync(lambda r: r.delete_registry("hub"))
    db.run_sync(lambda r: r.delete_registry("spare"))
    assert [r.name for r in db.run_sync(lambda r: r.list_registries())] == ["hub", "local"]


def test_foreign_keys_are_enforced_even_below_the_repo(db: Database) -> None:
    """RESTRICT holds in the database itself (on SQLite: the pragma is on for the store's
    connection)."""
    db.run_sync(lambda r: r.create_task(rule()))
    with pytest.raises(Exception, match="(?i)FOREIGN KEY"):
        db.run_sync(lambda _: _raw_delete_registry("hub"))


def _raw_delete_registry(name: str) -> None:
    from regsync.daemon.store.models import Registry

    Registry.delete().where(Registry.name == name).execute()


def test_upsert_registry_reports_created(db: Database) -> None:
    assert db.run_sync(
        lambda r: r.upsert_registry(RegistrySettings("new", "https://n.example"))) is None
    assert db.run_sync(lambda r: r.upsert_registry(hub(password="plain"))) is not None
    assert db.run_sync(lambda r: r.get_registry("hub")).settings.password == "plain"


# Tasks -----------------------------------------------------------------------------------------
def test_task_round_trip(db: Database) -> None:
    created = db.run_sync(lambda r: r.create_task(rule()))
    assert created.rule == rule()
    assert created.last_execution is None and not created.running
    plain = SyncRule("plain", Endpoint("local", "a"), Endpoint("spare", "b"))
    db.run_sync(lambda r: r.create_task(plain))
    assert db.run_sync(lambda r: r.get_task("plain")).rule == plain
    unsigned = SyncRule("unsigned", Endpoint("local", "a"), Endpoint("spare", "c"),
                        referrers=False)  # the daemon's tasks followed referrers whatever it said
    db.run_sync(lambda r: r.create_task(unsigned))
    assert db.run_sync(lambda r: r.get_task("unsigned")).rule == unsigned
    sboms = SyncRule("sboms", Endpoint("local", "a"), Endpoint("spare", "d"),
                     referrer_types=("application/spdx+json",))
    db.run_sync(lambda r: r.create_task(sboms))
    assert db.run_sync(lambda r: r.get_task("sboms")).rule == sboms
    assert [t.name for t in db.run_sync(lambda r: r.list_tasks())] == ["nginx", "plain",
                                                                       "sboms", "unsigned"]


def test_task_errors(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    with pytest.raises(DuplicateItemError, match="task named 'nginx'"):
        db.run_sync(lambda r: r.create_task(rule()))
    with pytest.raises(UnknownItemError, match="no task named 'gone'"):
        db.run_sync(lambda r: r.get_task("gone"))
    with pytest.raises(UnknownItemError, match="no task named 'gone'"):
        db.run_sync(lambda r: r.update_task(rule("gone")))
    bad = rule("bad", target=Endpoint("nowhere", "x"))
    with pytest.raises(UnknownItemError) as caught:
        db.run_sync(lambda r: r.create_task(bad))
    message = str(caught.value)
    assert "task 'bad': target.registry: no registry named 'nowhere'" in message
    assert "known: hub, local, spare" in message


def test_update_enable_and_upsert_task(db: Database, clock: Clock) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    clock.now += 3600
    changed = rule(target=Endpoint("spare", "copy/nginx"), tags=TagFilter(), cron_expression=None)
    assert db.run_sync(lambda r: r.update_task(changed)).rule == changed
    assert db.run_sync(lambda r: r.get_registry("spare")).used_by == ("nginx",)
    assert db.run_sync(lambda r: r.get_registry("local")).used_by == ()
    assert not db.run_sync(lambda r: r.set_task_enabled("nginx", False)).rule.enabled
    assert db.run_sync(lambda r: r.set_task_enabled("nginx", True)).rule.enabled
    assert not db.run_sync(lambda r: r.upsert_task(rule()))
    assert db.run_sync(lambda r: r.get_task("nginx")).rule == rule()
    assert db.run_sync(lambda r: r.upsert_task(rule("other")))
    created = db.run_sync(lambda r: (r.task_created("nginx"), r.task_created("other")))
    assert created == (datetime.fromtimestamp(NOON, UTC), datetime.fromtimestamp(NOON + 3600, UTC))


def test_delete_task_takes_its_history_but_not_while_running(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    first = db.run_sync(lambda r: r.create_execution("nginx", Trigger.MANUAL))
    with pytest.raises(ConflictError, match=f"'nginx' is running \\(execution {first.id}\\)"):
        db.run_sync(lambda r: r.delete_task("nginx"))
    db.run_sync(lambda r: r.add_results(first.id, [result("1.25", Outcome.COPIED)]))
    db.run_sync(lambda r: r.add_logs(first.id, [LogEvent("info", "hello")]))
    db.run_sync(lambda r: r.finish_execution(first.id, ExecutionStatus.FAILED, Counters()))
    db.run_sync(lambda r: r.delete_task("nginx"))
    with pytest.raises(UnknownItemError, match=f"no execution with id {first.id}"):
        db.run_sync(lambda r: r.get_execution(first.id))
    assert _count_rows(db, "tag_result") == 0
    assert _count_rows(db, "log_line") == 0
    # ids are never reused: an old id in a UI never shows another run
    db.run_sync(lambda r: r.create_task(rule()))
    again = db.run_sync(lambda r: r.create_execution("nginx", Trigger.MANUAL))
    assert again.id > first.id


def _count_rows(db: Database, table: str) -> int:
    from regsync.daemon.store.models import Execution

    def count(_: Repo) -> int:
        database = Execution._meta.database
        return int(database.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    return db.run_sync(count)


# Executions ------------------------------------------------------------------------------------
def test_execution_life_cycle(db: Database, clock: Clock) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    queued = db.run_sync(lambda r: r.create_execution("nginx", Trigger.CRON))
    assert (queued.task, queued.trigger, queued.status) == ("nginx", Trigger.CRON, "queued")
    assert queued.started == datetime.fromtimestamp(NOON, UTC)
    assert db.run_sync(lambda r: r.get_task("nginx")).running
    with pytest.raises(ConflictError, match="already running"):
        db.run_sync(lambda r: r.create_execution("nginx", Trigger.MANUAL))

    clock.now += 5
    running = db.run_sync(lambda r: r.mark_running(queued.id))
    assert running.status is ExecutionStatus.RUNNING
    assert running.started == datetime.fromtimestamp(NOON + 5, UTC)
    with pytest.raises(ConflictError, match="is running, not queued"):
        db.run_sync(lambda r: r.mark_running(queued.id))

    progress = Counters(tags_total=4, tags_copied=1, bytes_copied=100)
    db.run_sync(lambda r: r.update_counters(queued.id, progress))
    assert db.run_sync(lambda r: r.get_execution(queued.id)).counters == progress

    clock.now += 60
    final = Counters(tags_total=4, tags_copied=3, tags_failed=1, blobs_copied=7, bytes_copied=900,
                     referrers_copied=2)
    done = db.run_sync(
        lambda r: r.finish_execution(queued.id, ExecutionStatus.FAILED, final, "1 tag failed")
    )
    assert done.status is ExecutionStatus.FAILED
    assert done.finished == datetime.fromtimestamp(NOON + 65, UTC)
    assert (done.counters, done.error) == (final, "1 tag failed")
    assert db.run_sync(lambda r: r.get_execution(queued.id)) == done
    with pytest.raises(ConflictError, match="already ended"):
        db.run_sync(lambda r: r.finish_execution(queued.id, ExecutionStatus.SUCCEEDED, final))
    with pytest.raises(ValueError, match="not a final status"):
        db.run_sync(lambda r: r.finish_execution(queued.id, ExecutionStatus.RUNNING, final))

    task = db.run_sync(lambda r: r.get_task("nginx"))
    assert task.last_execution == done and not task.running
    retry = db.run_sync(lambda r: r.create_execution("nginx", Trigger.RETRY, queued.id))
    assert retry.parent_id == queued.id
    assert db.run_sync(lambda r: r.get_task("nginx")).last_execution == retry


def test_execution_errors(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    with pytest.raises(UnknownItemError, match="no task named 'x'"):
        db.run_sync(lambda r: r.create_execution("x", Trigger.MANUAL))
    with pytest.raises(UnknownItemError, match="no execution with id 99"):
        db.run_sync(lambda r: r.create_execution("nginx", Trigger.RETRY, 99))
    for op in (
        lambda r: r.get_execution(99),
        lambda r: r.mark_running(99),
        lambda r: r.update_counters(99, Counters()),
        lambda r: r.results(99),
        lambda r: r.add_logs(99, []),
        lambda r: r.logs(99),
    ):
        with pytest.raises(UnknownItemError, match="99"):
            db.run_sync(op)
    assert db.run_sync(lambda r: r.get_task("nginx")).last_execution is None


def test_interrupt_running_marks_queued_and_running(db: Database, clock: Clock) -> None:
    for name in ("a", "b", "c"):
        db.run_sync(lambda r, n=name: r.create_task(rule(n)))  # type: ignore[misc]
    a = db.run_sync(lambda r: r.create_execution("a", Trigger.CRON))
    b = db.run_sync(lambda r: r.create_execution("b", Trigger.MANUAL))
    c = db.run_sync(lambda r: r.create_execution("c", Trigger.MANUAL))
    db.run_sync(lambda r: r.mark_running(a.id))
    db.run_sync(lambda r: r.finish_execution(c.id, ExecutionStatus.SUCCEEDED, Counters()))
    assert [e.id for e in db.run_sync(lambda r: r.running())] == [a.id, b.id]

    clock.now += 30
    interrupted = db.run_sync(lambda r: r.interrupt_running())
    assert [(e.id, e.status) for e in interrupted] == [
        (a.id, ExecutionStatus.INTERRUPTED),
        (b.id, ExecutionStatus.INTERRUPTED),
    ]
    assert all(e.finished == datetime.fromtimestamp(NOON + 30, UTC) for e in interrupted)
    assert db.run_sync(lambda r: r.running()) == []
    assert db.run_sync(lambda r: r.get_execution(c.id)).status is ExecutionStatus.SUCCEEDED
    resumed = db.run_sync(lambda r: r.create_execution("a", Trigger.RESUME, a.id))
    assert (resumed.trigger, resumed.parent_id) == (Trigger.RESUME, a.id)
    db.run_sync(lambda r: r.finish_execution(resumed.id, ExecutionStatus.SUCCEEDED, Counters()))
    # b was not resumed yet (a start that ended early): the next start resumes it; a's resume
    # is newer than a, so a is done
    assert [e.id for e in db.run_sync(lambda r: r.interrupt_running())] == [b.id]


def test_an_execution_a_graceful_shutdown_interrupted_is_resumed(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule("a")))
    old = db.run_sync(lambda r: r.create_execution("a", Trigger.CRON))
    db.run_sync(lambda r: r.finish_execution(old.id, ExecutionStatus.INTERRUPTED, Counters()))
    a = db.run_sync(lambda r: r.create_execution("a", Trigger.MANUAL))
    db.run_sync(lambda r: r.mark_running(a.id))
    db.run_sync(lambda r: r.finish_execution(
        a.id, ExecutionStatus.INTERRUPTED, Counters(), "interrupted by daemon shutdown"))
    assert [e.id for e in db.run_sync(lambda r: r.interrupt_running())] == [a.id]  # not `old`


def test_list_executions_filters_and_pages(db: Database) -> None:
    ids: dict[str, list[int]] = {"a": [], "b": []}
    for name in ids:
        db.run_sync(lambda r, n=name: r.create_task(rule(n)))  # type: ignore[misc]
    for n in range(5):
        for name in ("a", "b"):
            e = db.run_sync(lambda r, t=name: r.create_execution(t, Trigger.CRON))  # type: ignore[misc]
            ids[name].append(e.id)
            status = ExecutionStatus.SUCCEEDED if n % 2 else ExecutionStatus.FAILED
            db.run_sync(lambda r, i=e.id, s=status: r.finish_execution(i, s, Counters()))  # type: ignore[misc]

    page, after = db.run_sync(lambda r: r.list_executions(ExecutionQuery(task="a", limit=2)))
    assert [e.id for e in page] == ids["a"][::-1][:2] and after == ids["a"][3]
    seen = [e.id for e in page]
    while after is not None:
        query = ExecutionQuery(task="a", limit=2, before_id=after)
        page, after = db.run_sync(lambda r, q=query: r.list_executions(q))  # type: ignore[misc]
        seen += [e.id for e in page]
    assert seen == ids["a"][::-1]

    failed = ExecutionQuery(statuses=(ExecutionStatus.FAILED,), limit=50)
    page, after = db.run_sync(lambda r: r.list_executions(failed))
    assert after is None
    assert {e.id for e in page} == {*ids["a"][::2], *ids["b"][::2]}
    assert all(e.status is ExecutionStatus.FAILED for e in page)
    everything, _ = db.run_sync(lambda r: r.list_executions(ExecutionQuery(limit=100)))
    assert len(everything) == 10
    with pytest.raises(UnknownItemError):
        db.run_sync(lambda r: r.list_executions(ExecutionQuery(task="zzz")))


# Results and logs ------------------------------------------------------------------------------
def test_results_upsert_by_tag_and_done_failed_sets(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    e = db.run_sync(lambda r: r.create_execution("nginx", Trigger.MANUAL))
    first = [
        result("1.25", Outcome.COPIED, digest="sha256:aa"),
        result("1.26", Outcome.SKIPPED, digest="sha256:bb"),
        result("1.27", Outcome.FAILED, reason="500 from target", error_kind="remote"),
        result("1.28", Outcome.FAILED, reason="refused", error_kind="auth"),
    ]
    db.run_sync(lambda r: r.add_results(e.id, first))
    assert db.run_sync(lambda r: r.results(e.id)) == first
    assert db.run_sync(lambda r: r.done_tags(e.id)) == {"1.25", "1.26"}
    assert db.run_sync(lambda r: r.failed_tags(e.id)) == {"1.27", "1.28"}

    fixed = result("1.27", Outcome.COPIED, digest="sha256:cc")
    db.run_sync(lambda r: r.add_results(e.id, [fixed]))
    stored = db.run_sync(lambda r: r.results(e.id))
    assert stored == [first[0], first[1], fixed, first[3]]
    assert db.run_sync(lambda r: r.failed_tags(e.id)) == {"1.28"}
    db.run_sync(lambda r: r.add_results(e.id, []))
    assert len(db.run_sync(lambda r: r.results(e.id))) == 4


def test_a_glob_task_keeps_its_exclude_and_results_carry_their_repository(db: Database) -> None:
    """One execution covers many repositories: the same tag in two of them is two results, and
    retry/resume know each by `repository:tag`."""
    glob = rule("team", source=Endpoint("hub", "team-a/**", ("team-a/old/**",)),
                target=Endpoint("local", "dr/team-a/**"))
    db.run_sync(lambda r: r.create_task(glob))
    assert db.run_sync(lambda r: r.get_task("team")).rule == glob
    e = db.run_sync(lambda r: r.create_execution("team", Trigger.MANUAL))
    results = [
        TagResult("team", "1.0", Outcome.COPIED, digest="sha256:aa", repository="team-a/web"),
        TagResult("team", "1.0", Outcome.FAILED, reason="x", repository="team-a/api/v2"),
    ]
    db.run_sync(lambda r: r.add_results(e.id, results))
    assert db.run_sync(lambda r: r.results(e.id)) == results
    assert db.run_sync(lambda r: r.done_tags(e.id)) == {"team-a/web:1.0"}
    assert db.run_sync(lambda r: r.failed_tags(e.id)) == {"team-a/api/v2:1.0"}


def test_ten_thousand_results_in_one_call(db: Database) -> None:
    """One flush of a fast run: more rows than SQLite binds variables in one statement."""
    db.run_sync(lambda r: r.create_task(rule()))
    e = db.run_sync(lambda r: r.create_execution("nginx", Trigger.MANUAL))
    many = [result(f"1.{i}", Outcome.COPIED, digest="sha256:aa") for i in range(10_000)]
    db.run_sync(lambda r: r.add_results(e.id, many))
    assert db.run_sync(lambda r: r.results(e.id)) == many


def test_results_are_paged_in_order_and_cut_by_size(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    e = db.run_sync(lambda r: r.create_execution("nginx", Trigger.MANUAL))
    tags = [result(f"1.{i}", Outcome.FAILED, reason="x" * 1000) for i in range(25)]
    db.run_sync(lambda r: r.add_results(e.id, tags))
    first = db.run_sync(lambda r: r.results_page(e.id, limit=10))
    assert first.results == tuple(tags[:10]) and first.total == 25
    assert first.next_after is not None
    rest = db.run_sync(lambda r: r.results_page(e.id, after=first.next_after or 0, limit=100))
    assert rest.results == tuple(tags[10:]) and rest.next_after is None
    small = db.run_sync(lambda r: r.results_page(e.id, limit=100, max_bytes=3500))
    assert small.results == tuple(tags[:3])  # ~1 KB each: a byte budget cuts the page
    tiny = db.run_sync(lambda r: r.results_page(e.id, limit=100, max_bytes=1))
    assert tiny.results == tuple(tags[:1])  # never an empty page while results are left
    with pytest.raises(UnknownItemError):
        db.run_sync(lambda r: r.results_page(999))


def test_logs_are_numbered_and_paged(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    e = db.run_sync(lambda r: r.create_execution("nginx", Trigger.MANUAL))
    events = [LogEvent("info", f"line {n}", rule="nginx", time=1000.0 + n) for n in range(450)]
    db.run_sync(lambda r: r.add_logs(e.id, events[:300]))
    db.run_sync(lambda r: r.add_logs(e.id, events[300:]))
    assert db.run_sync(lambda r: r.logs(e.id)) == events
    assert db.run_sync(lambda r: r.logs(e.id, offset=298, limit=4)) == events[298:302]
    assert db.run_sync(lambda r: r.logs(e.id, offset=449)) == events[449:]
    assert db.run_sync(lambda r: r.logs(e.id, offset=450)) == []


# Stats and housekeeping ------------------------------------------------------------------------
def test_stats_counts_today_from_utc_midnight(db: Database, clock: Clock) -> None:
    for name, enabled in (("a", True), ("b", True), ("c", False)):
        db.run_sync(lambda r, n=name, on=enabled: r.create_task(rule(n, enabled=on)))  # type: ignore[misc]

    def run(task: str, status: ExecutionStatus, at: float, copied: int) -> None:
        clock.now = at
        e = db.run_sync(lambda r: r.create_execution(task, Trigger.CRON))
        counters = Counters(bytes_copied=copied)
        db.run_sync(lambda r: r.finish_execution(e.id, status, counters))

    run("a", ExecutionStatus.SUCCEEDED, NOON - DAY, 1)  # yesterday
    run("a", ExecutionStatus.FAILED, NOON - 12 * 3600 - 1, 2)  # 23:59:59 yesterday
    run("a", ExecutionStatus.SUCCEEDED, NOON - 12 * 3600, 4)  # 00:00:00 today
    run("b", ExecutionStatus.FAILED, NOON - 60, 8)
    run("b", ExecutionStatus.STOPPED, NOON - 30, 16)
    clock.now = NOON
    active = db.run_sync(lambda r: r.create_execution("c", Trigger.MANUAL))
    db.run_sync(lambda r: r.update_counters(active.id, Counters(bytes_copied=32)))

    stats = db.run_sync(lambda r: r.stats(datetime.fromtimestamp(NOON, UTC)))
    assert stats.tasks_total == 3 and stats.tasks_enabled == 2
    assert stats.registries_total == 3
    assert stats.running == 1
    assert (stats.succeeded_today, stats.failed_today) == (1, 1)
    assert (stats.succeeded_total, stats.failed_total) == (2, 2)
    assert stats.executions_total == 6
    assert stats.bytes_copied_today == 4 + 8 + 16 + 32
    assert db.run_sync(lambda r: r.stats()) == stats  # `now` defaults to the store's clock


def test_prune_history_keeps_the_newest_and_active(db: Database) -> None:
    db.run_sync(lambda r: r.create_task(rule()))
    db.run_sync(lambda r: r.create_task(rule("other")))
    others = []
    for _ in range(3):  # another task's history is not touched
        e = db.run_sync(lambda r: r.create_execution("other", Trigger.CRON))
        db.run_sync(lambda r, i=e.id: r.finish_execution(i, ExecutionStatus.SUCCEEDED, Counters()))  # type: ignore[misc]
        others.append(e.id)
    ids = []
    for _ in range(5):
        e = db.run_sync(lambda r: r.create_execution("nginx", Trigger.CRON))
        db.run_sync(lambda r, i=e.id: r.add_logs(i, [LogEvent("info", "x")]))  # type: ignore[misc]
        db.run_sync(lambda r, i=e.id: r.finish_execution(i, ExecutionStatus.SUCCEEDED, Counters()))  # type: ignore[misc]
        ids.append(e.id)
    active = db.run_sync(lambda r: r.create_execution("nginx", Trigger.CRON))
    assert db.run_sync(lambda r: r.prune_history("nginx", keep=2)) == 3
    left, _ = db.run_sync(lambda r: r.list_executions(ExecutionQuery()))
    assert [e.id for e in left] == [active.id, ids[4], ids[3], *reversed(others)]
    assert _count_rows(db, "log_line") == 2


# Transactions ----------------------------------------------------------------------------------
def test_an_operation_that_fails_leaves_nothing_behind(db: Database) -> None:
    def half(repo: Repo) -> None:
        repo.create_task(rule())
        repo.create_registry(hub())  # duplicate: the task above must roll back too

    with pytest.raises(DuplicateItemError):
        db.run_sync(half)
    assert db.run_sync(lambda r: r.list_tasks()) == []


# The file --------------------------------------------------------------------------------------
def test_database_file_and_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "regsync.db"
    with Database.open(path) as db:
        db.run_sync(lambda r: r.create_registry(hub()))
        for name in ("regsync.db", "regsync.db-wal", "regsync.db-shm"):
            mode = stat.S_IMODE((path.parent / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))


def test_an_existing_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    with Database.open(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_data_survives_reopening(tmp_path: Path) -> None:
    with Database.open(tmp_path / "s.db") as db:
        db.run_sync(lambda r: r.create_registry(hub()))
    with Database.open(tmp_path / "s.db") as db:
        assert db.schema_version == LATEST
        assert db.run_sync(lambda r: r.get_registry("hub")).settings == hub()


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "s.db")
    db.close()
    db.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        db.run_sync(lambda r: r.list_registries())


def test_a_pruning_task_and_its_deletions_are_stored(db: Database) -> None:
    """prune, prune_max, DELETED results and the tags_deleted counter survive the store."""
    pruning = replace(rule(), prune=True, prune_max=PruneLimit(7))
    db.run_sync(lambda r: r.create_task(pruning))
    assert db.run_sync(lambda r: r.get_task("nginx")).rule == pruning
    percent = replace(pruning, prune_max=PruneLimit(20, percent=True))
    db.run_sync(lambda r: r.update_task(percent))
    assert db.run_sync(lambda r: r.get_task("nginx")).rule.prune_max == PruneLimit(20, True)
    e = db.run_sync(lambda r: r.create_execution("nginx", Trigger.MANUAL))
    gone = result("old", Outcome.DELETED, digest="sha256:dd", reason="pruned: not selected")
    db.run_sync(lambda r: r.add_results(e.id, [gone]))
    assert db.run_sync(lambda r: r.results(e.id)) == [gone]
    assert db.run_sync(lambda r: r.done_tags(e.id)) == set()
    counters = Counters(tags_total=1, tags_skipped=1, tags_deleted=1)
    db.run_sync(lambda r: r.finish_execution(e.id, ExecutionStatus.SUCCEEDED, counters))
    assert db.run_sync(lambda r: r.get_execution(e.id)).counters.tags_deleted == 1
