"""Several regsyncd on one PostgreSQL (real processes, real registries, a real PostgreSQL): the
work is shared and done exactly once, a daemon killed -9 mid-copy is taken over by another, the
schedule fires once when its leader dies, and any daemon's API stops, retries, logs and watches
an execution another daemon runs.

Leases are 2 s here (REGSYNC_LEASE_SECONDS) so a take-over costs seconds, not half a minute.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from support.daemonprocess import DaemonProcess
from support.images import manifest_digest, push_image, random_layer
from support.proxy import CountingProxy, Fault, ProxyRequest
from support.registry import RegistryServer

pytestmark = pytest.mark.integration

S = pb.ExecutionStatus
ACTIVE = (S.EXECUTION_STATUS_QUEUED, S.EXECUTION_STATUS_RUNNING)
LEASE = 2.0
LEADER = "this daemon fires the cron schedules now"


class SlowSource:
    """The source behind a proxy: every blob download held back, some tags refused while
    `broken` holds them."""

    def __init__(self, registry: RegistryServer, delay: float) -> None:
        self.delay = delay
        self.broken: set[str] = set()
        self.proxy = CountingProxy(registry, fault=self._fault)

    def _fault(self, request: ProxyRequest) -> Fault | None:
        if "/blobs/" in request.path and request.method == "GET":
            return Fault.slow(self.delay)
        tag = request.path.rsplit("/manifests/", 1)[-1] if "/manifests/" in request.path else ""
        return Fault.http_status(404) if tag in self.broken else None


@pytest.fixture
def source(registry: RegistryServer) -> Iterator[SlowSource]:
    slow = SlowSource(registry, 0.1)
    with slow.proxy:
        yield slow


@pytest.fixture
def target(registry2: RegistryServer) -> Iterator[CountingProxy]:
    with CountingProxy(registry2) as proxy:
        yield proxy


def _daemons(pg_url: str, tmp_path: Path, n: int, *,
             max_running: int | None = None) -> list[DaemonProcess]:
    return [DaemonProcess(pg_url, tmp_path / f"d{i}.log", lease=LEASE,
                          max_running=max_running).start() for i in range(n)]


def _setup(d: DaemonProcess, source: SlowSource, target: CountingProxy, repos: list[str],
           cron: str = "") -> None:
    d.registries.CreateRegistry(pb.RegistrySpec(name="src", url=source.proxy.url))
    d.registries.CreateRegistry(pb.RegistrySpec(name="dst", url=target.url))
    for repo in repos:
        d.tasks.CreateTask(pb.TaskSpec(
            name=repo, enabled=True, cron_expression=cron,
            source=pb.Endpoint(registry="src", repository=repo),
            target=pb.Endpoint(registry="dst", repository=repo)))


def _executions(d: DaemonProcess, task: str = "") -> list[pb.Execution]:
    listed = d.executions.ListExecutions(pb.ListExecutionsRequest(task=task, limit=500),
                                         timeout=10)
    return list(listed.executions)


def _until(what: Callable[[], object], timeout: float, why: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := what():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out: {why}")


def _owner(daemons: list[DaemonProcess], execution: pb.Execution) -> DaemonProcess:
    """The process an execution's `daemon` ("host pid N (#id)") names."""
    match = re.search(r" pid (\d+) ", execution.daemon)
    assert match, execution
    return next(d for d in daemons if d.pid == int(match.group(1)))


def _drain(stream: Iterator[pb.WatchEvent], into: list[pb.WatchEvent]) -> None:
    """Collect a Watch stream's events until it ends or is cancelled."""
    try:
        into.extend(stream)
    except grpc.RpcError:
        pass


def _push(registry: RegistryServer, repo: str, tags: list[str]) -> None:
    for tag in tags:
        push_image(registry, repo, tag, layers=[random_layer(20_000, seed=f"{repo}{tag}")])


def test_three_daemons_share_a_dozen_tasks_and_run_each_exactly_once(
    registry: RegistryServer, source: SlowSource, target: CountingProxy, pg_url: str,
    tmp_path: Path,
) -> None:
    repos, tags = [f"app{i}" for i in range(12)], ["1.0", "1.1", "1.2"]
    for repo in repos:
        _push(registry, repo, tags)
    daemons = _daemons(pg_url, tmp_path, 3, max_running=2)
    _setup(daemons[0], source, target, repos)
    most: dict[int, int] = {}  # the most executions each daemon ran at once
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now: dict[int, int] = {}
            for e in _executions(daemons[2]):
                if e.status == S.EXECUTION_STATUS_RUNNING:
                    now[e.daemon_id] = now.get(e.daemon_id, 0) + 1
            for daemon, count in now.items():
                most[daemon] = max(most.get(daemon, 0), count)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for repo in repos:  # all of them through one daemon's API
            daemons[0].tasks.RunTask(pb.NameRequest(name=repo), timeout=10)
        _until(lambda: all(e.status not in ACTIVE for e in _executions(daemons[1])), 120,
               "every execution ends")
    finally:
        stop.set()
        sampler.join(10)

    executions = _executions(daemons[1])
    assert sorted(e.task for e in executions) == sorted(repos)  # one execution per task
    assert {e.status for e in executions} == {S.EXECUTION_STATUS_SUCCEEDED}
    assert len({e.daemon_id for e in executions}) == 3  # the work was shared
    assert most and max(most.values()) <= 2, most  # --max-running holds per daemon
    for e in executions:
        detail = daemons[2].execution(e.id)
        assert sorted(t.tag for t in detail.tags) == tags
        assert {t.outcome for t in detail.tags} == {ev.TAG_OUTCOME_COPIED}
    for repo in repos:
        for tag in tags:  # each tag pushed once, by one daemon
            assert target.count("PUT", f"^/v2/{repo}/manifests/{re.escape(tag)}$") == 1
            assert manifest_digest(target.url, repo, tag) == manifest_digest(registry, repo, tag)
    assert all(d.terminate() == 0 for d in daemons)


def test_a_daemon_killed_mid_copy_is_taken_over_and_its_run_finished_exactly(
    registry: RegistryServer, source: SlowSource, target: CountingProxy, pg_url: str,
    tmp_path: Path,
) -> None:
    tags = [f"1.{i}" for i in range(12)]
    _push(registry, "app", tags)
    daemons = _daemons(pg_url, tmp_path, 3)
    _setup(daemons[0], source, target, ["app"])
    run = daemons[0].tasks.RunTask(pb.NameRequest(name="app"), timeout=10)
    started = _until(lambda: (d := daemons[0].execution(run.id)).execution.status
                     == S.EXECUTION_STATUS_RUNNING and len(d.tags) >= 2 and d, 60, "tags copied")
    assert isinstance(started, pb.ExecutionDetail)
    owner = _owner(daemons, started.execution)
    owner.kill()  # kill -9, mid-copy
    killed_at = time.monotonic()
    others = [d for d in daemons if d is not owner]

    ended = others[0].wait(run.id, lambda d: d.execution.status not in ACTIVE, timeout=30)
    assert time.monotonic() - killed_at >= LEASE * 0.5  # by the lease, not at once
    assert ended.execution.status == S.EXECUTION_STATUS_INTERRUPTED
    assert "stopped renewing its lease" in ended.execution.error
    resume = _until(lambda: [e for e in _executions(others[1], "app") if e.id != run.id], 10,
                    "a resume")
    assert isinstance(resume, list) and len(resume) == 1
    assert (resume[0].trigger, resume[0].parent_id) == (pb.TRIGGER_RESUME, run.id)
    done = others[1].wait(resume[0].id, lambda d: d.execution.status not in ACTIVE, timeout=60)
    assert done.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert _owner(daemons, done.execution) in others
    first = {t.tag for t in ended.tags if t.outcome == ev.TAG_OUTCOME_COPIED}
    assert first and not first & {t.tag for t in done.tags}  # finished tags not copied again
    assert first | {t.tag for t in done.tags} == set(tags)
    for tag in tags:  # each tag pushed exactly once, whoever pushed it
        assert target.count("PUT", f"^/v2/app/manifests/{re.escape(tag)}$") == 1
        assert manifest_digest(target.url, "app", tag) == manifest_digest(registry, "app", tag)
    assert not [e for e in _executions(others[0]) if e.status in ACTIVE]
    assert all(d.terminate() == 0 for d in others)


def test_the_schedule_fires_once_when_its_leader_is_killed(
    registry: RegistryServer, source: SlowSource, target: CountingProxy, pg_url: str,
    tmp_path: Path,
) -> None:
    _push(registry, "app", ["1.0"])
    daemons = _daemons(pg_url, tmp_path, 3)
    _setup(daemons[0], source, target, ["app"], cron="* * * * *")
    leaders = _until(lambda: [d for d in daemons if LEADER in d.log_text()], 10, "a leader")
    assert isinstance(leaders, list) and len(leaders) == 1
    statuses = [d.control.GetStatus(pb.StatusRequest(), timeout=10) for d in daemons]
    assert [s.fires_schedules for s in statuses] == [d is leaders[0] for d in daemons]
    assert all(f" pid {d.pid} (#" in s.daemon for s, d in zip(statuses, daemons, strict=True))
    while not 5 < time.time() % 60 < 50:  # mid-minute: no tick of its own in flight
        time.sleep(0.5)
    leaders[0].kill()  # it may have fired a tick already: that one counts as its tick
    killed_at = time.time()
    next_tick = killed_at - killed_at % 60 + 60  # the first the others can fire
    others = [d for d in daemons if d is not leaders[0]]
    _until(lambda: [d for d in others if LEADER in d.log_text()], 10, "a new leader")

    def fired_after_the_kill(d: DaemonProcess) -> list[pb.Execution]:
        return [e for e in _executions(d, "app") if e.trigger == pb.TRIGGER_CRON
                and e.started.ToDatetime().timestamp() >= next_tick]

    fired = _until(lambda: fired_after_the_kill(others[0]), 70,
                   "the schedule fires after the leader's death")
    assert isinstance(fired, list)
    others[0].wait(fired[0].id, lambda d: d.execution.status not in ACTIVE, timeout=30)
    time.sleep(2 * LEASE)  # time for a second daemon to fire the same tick, were it to
    cron = [e for e in _executions(others[1], "app") if e.trigger == pb.TRIGGER_CRON]
    ticks = [int(e.started.ToDatetime().timestamp() // 60) for e in cron]
    assert len(ticks) == len(set(ticks)), cron  # no tick fired twice
    (late,) = fired_after_the_kill(others[1])
    assert f" pid {leaders[0].pid} " not in late.daemon
    assert late.status == S.EXECUTION_STATUS_SUCCEEDED
    assert sum(LEADER in d.log_text() for d in others) == 1  # one leader among the others
    assert all(d.terminate() == 0 for d in others)


def test_stop_retry_logs_and_watch_through_a_daemon_that_does_not_run_the_execution(
    registry: RegistryServer, source: SlowSource, target: CountingProxy, pg_url: str,
    tmp_path: Path,
) -> None:
    tags = [f"1.{i}" for i in range(20)]
    _push(registry, "app", tags)
    daemons = _daemons(pg_url, tmp_path, 2, max_running=1)
    _setup(daemons[0], source, target, ["app"])
    run = daemons[0].tasks.RunTask(pb.NameRequest(name="app"), timeout=10)
    running = _until(lambda: (d := daemons[0].execution(run.id)).execution.status
                     == S.EXECUTION_STATUS_RUNNING and d, 20, "claimed")
    assert isinstance(running, pb.ExecutionDetail)
    owner = _owner(daemons, running.execution)
    other = next(d for d in daemons if d is not owner)
    assert f"pid {owner.pid} " in running.execution.daemon

    events: list[pb.WatchEvent] = []
    watch = other.control.Watch(pb.WatchRequest(execution_id=run.id, logs=True), timeout=60)
    watcher = threading.Thread(target=lambda: events.extend(watch), daemon=True)
    watcher.start()
    every: list[pb.WatchEvent] = []  # the panel's dashboard: every execution, no logs
    watch_all = other.control.Watch(pb.WatchRequest(), timeout=60)
    threading.Thread(target=_drain, args=(watch_all, every), daemon=True).start()
    _until(lambda: sum(e.HasField("tag") for e in events) >= 2, 30, "tags watched elsewhere")
    _until(lambda: any(e.execution_id == run.id and e.HasField("tag") for e in every), 10,
           "the run in a watch of every execution")
    assert not any(e.HasField("log") for e in every)
    logs = other.executions.GetLogs(pb.LogsRequest(execution_id=run.id), timeout=10)
    assert logs.total > 0 and logs.lines

    stopped = other.tasks.StopTask(pb.NameRequest(name="app"), timeout=20)
    assert stopped.status == S.EXECUTION_STATUS_STOPPED, stopped
    watcher.join(10)
    assert not watcher.is_alive()  # the watch ended with the execution
    assert events[-1].execution.status == S.EXECUTION_STATUS_STOPPED
    assert any(e.HasField("progress") or e.HasField("execution") for e in events)
    assert len({t.tag.tag for t in events if t.HasField("tag")}) >= 2
    final = other.execution(run.id)
    assert len(final.tags) < len(tags) and final.execution.daemon == running.execution.daemon

    # a tag the source refuses fails; its retry, asked through the other daemon, copies it
    source.broken = {"1.0"}
    again = other.tasks.RunTask(pb.NameRequest(name="app"), timeout=10)
    failed = other.wait(again.id, lambda d: d.execution.status not in ACTIVE, timeout=60)
    assert failed.execution.status == S.EXECUTION_STATUS_FAILED
    source.broken = set()
    retry = other.executions.RetryFailed(pb.ExecutionRequest(id=again.id), timeout=10)
    retried = owner.wait(retry.id, lambda d: d.execution.status not in ACTIVE, timeout=60)
    assert retried.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert [t.tag for t in retried.tags] == ["1.0"]
    assert manifest_digest(target.url, "app", "1.0") == manifest_digest(registry, "app", "1.0")
    watch_all.cancel()
    assert all(d.terminate() == 0 for d in daemons)


def test_a_frozen_daemon_loses_its_run_to_another_and_drops_it_when_it_thaws(
    registry: RegistryServer, source: SlowSource, target: CountingProxy, pg_url: str,
    tmp_path: Path,
) -> None:
    """SIGSTOP keeps the daemon's store session (and its advisory lock) but stops its lease
    renewals, as a host cut off from the network does: the run is taken over by the lease, and
    the thawed daemon stops copying it and records nothing of it."""
    tags = [f"1.{i}" for i in range(12)]
    _push(registry, "app", tags)
    daemons = _daemons(pg_url, tmp_path, 2)
    _setup(daemons[0], source, target, ["app"])
    run = daemons[0].tasks.RunTask(pb.NameRequest(name="app"), timeout=10)
    started = _until(lambda: (d := daemons[0].execution(run.id)).execution.status
                     == S.EXECUTION_STATUS_RUNNING and len(d.tags) >= 2 and d, 60, "tags copied")
    assert isinstance(started, pb.ExecutionDetail)
    owner = _owner(daemons, started.execution)
    other = next(d for d in daemons if d is not owner)
    assert owner.proc is not None
    owner.proc.send_signal(signal.SIGSTOP)
    try:
        ended = other.wait(run.id, lambda d: d.execution.status not in ACTIVE, timeout=30)
        assert ended.execution.status == S.EXECUTION_STATUS_INTERRUPTED
    finally:
        owner.proc.send_signal(signal.SIGCONT)
    resume = _until(lambda: [e for e in _executions(other, "app") if e.id != run.id], 10,
                    "a resume")
    assert isinstance(resume, list)
    done = other.wait(resume[0].id, lambda d: d.execution.status not in ACTIVE, timeout=60)
    assert done.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    _until(lambda: "another daemon took it over" in owner.log_text(), 10, "the owner drops it")
    after = other.execution(run.id)
    assert after.execution.status == S.EXECUTION_STATUS_INTERRUPTED  # not overwritten
    assert after.execution.error == ended.execution.error
    for tag in tags:
        assert manifest_digest(target.url, "app", tag) == manifest_digest(registry, "app", tag)
    assert not [e for e in _executions(owner) if e.status in ACTIVE]
    assert sorted(e.id for e in _executions(owner, "app")) == [run.id, resume[0].id]  # one resume
    assert all(d.terminate() == 0 for d in daemons)


def test_a_daemon_shut_down_hands_its_run_to_another(
    registry: RegistryServer, source: SlowSource, target: CountingProxy, pg_url: str,
    tmp_path: Path,
) -> None:
    """SIGTERM: past the grace period the run is recorded as interrupted and a running daemon
    resumes it at once (no daemon has to start for that)."""
    tags = [f"1.{i}" for i in range(20)]
    _push(registry, "app", tags)
    source.delay = 0.5  # 20 s of blob downloads: twice the grace period
    daemons = _daemons(pg_url, tmp_path, 2)
    _setup(daemons[0], source, target, ["app"])
    run = daemons[0].tasks.RunTask(pb.NameRequest(name="app"), timeout=10)
    started = _until(lambda: (d := daemons[0].execution(run.id)).execution.status
                     == S.EXECUTION_STATUS_RUNNING and len(d.tags) >= 2 and d, 60, "tags copied")
    assert isinstance(started, pb.ExecutionDetail)
    owner = _owner(daemons, started.execution)
    other = next(d for d in daemons if d is not owner)
    assert owner.terminate() == 0  # after the default 10 s grace
    ended = other.execution(run.id)
    assert ended.execution.status == S.EXECUTION_STATUS_INTERRUPTED
    resume = [e for e in _executions(other, "app") if e.id != run.id]
    assert [(e.trigger, e.parent_id) for e in resume] == [(pb.TRIGGER_RESUME, run.id)]
    done = other.wait(resume[0].id, lambda d: d.execution.status not in ACTIVE, timeout=60)
    assert done.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert _owner(daemons, done.execution) is other
    finished = {t.tag for t in ended.tags if t.outcome == ev.TAG_OUTCOME_COPIED}
    assert not finished & {t.tag for t in done.tags}
    for tag in tags:
        assert manifest_digest(target.url, "app", tag) == manifest_digest(registry, "app", tag)
    assert other.terminate() == 0
