"""Who may open a store: a second daemon on one SQLite file is refused; a PostgreSQL server that
refuses us is a clear start-up error (real processes, real registries, a real PostgreSQL)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from support.daemonprocess import REGSYNCD, DaemonProcess
from support.images import manifest_digest, push_image, random_layer
from support.postgres import PostgresCluster
from support.proxy import CountingProxy
from support.registry import RegistryServer, free_port

pytestmark = pytest.mark.integration

S = pb.ExecutionStatus
ACTIVE = (S.EXECUTION_STATUS_QUEUED, S.EXECUTION_STATUS_RUNNING)


@pytest.fixture
def slow_source(registry: RegistryServer) -> Iterator[CountingProxy]:
    """The source, every blob download held back 100 ms: the run outlasts a second start-up."""

    def slow(request: Any) -> None:
        if "/blobs/" in request.path and request.method == "GET":
            time.sleep(0.1)

    with CountingProxy(registry, fault=slow) as proxy:
        yield proxy


def serve(db: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """A `regsyncd serve` expected to give up at start-up."""
    return subprocess.run(
        [REGSYNCD, "serve", "--db", db, "--listen", f"127.0.0.1:{free_port()}", "--ui-port", "0",
         *extra], capture_output=True, text=True, timeout=60, check=False)


def test_a_second_daemon_on_the_same_sqlite_file_refuses_and_the_first_runs_on(
    registry: RegistryServer, registry2: RegistryServer, slow_source: CountingProxy,
    tmp_path: Path,
) -> None:
    tags = [f"1.{i}" for i in range(12)]
    for tag in tags:
        push_image(registry, "app", tag, layers=[random_layer(20_000, seed=tag)])
    store = tmp_path / "regsync.db"
    first = DaemonProcess(store, tmp_path / "first.log").start()
    first.registries.CreateRegistry(pb.RegistrySpec(name="src", url=slow_source.url))
    first.registries.CreateRegistry(pb.RegistrySpec(name="dst", url=registry2.url))
    first.tasks.CreateTask(pb.TaskSpec(
        name="app", enabled=True, source=pb.Endpoint(registry="src", repository="app"),
        target=pb.Endpoint(registry="dst", repository="app")))
    run = first.tasks.RunTask(pb.NameRequest(name="app"))
    first.wait(run.id, lambda d: d.execution.status == S.EXECUTION_STATUS_RUNNING)

    second = serve(str(store))
    assert second.returncode == 2, second.stderr
    assert (f"regsyncd: the store {store} is in use by another regsyncd (pid {first.proc.pid})"
            if first.proc else "") in second.stderr
    # the first daemon's run was not taken for interrupted, nor resumed by anyone
    assert first.execution(run.id).execution.status == S.EXECUTION_STATUS_RUNNING
    final = first.wait(run.id, lambda d: d.execution.status not in ACTIVE)
    assert final.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert {t.tag for t in final.tags} == set(tags)  # every tag once, by this run
    listed = first.executions.ListExecutions(pb.ListExecutionsRequest(task="app"), timeout=10)
    assert [e.id for e in listed.executions] == [run.id]
    for tag in tags:
        assert manifest_digest(registry2, "app", tag) == manifest_digest(registry, "app", tag)

    first.kill()  # kill -9: the kernel drops the lock, no stale lock file stops a restart
    again = DaemonProcess(store, tmp_path / "again.log").start()
    assert again.execution(run.id).execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert again.terminate() == 0


def test_a_postgresql_server_that_refuses_is_a_clear_start_up_error(
    postgres: PostgresCluster, pg_url: str, tmp_path: Path
) -> None:
    name = pg_url.rsplit("/", 1)[1]
    wrong = serve(postgres.url(name, password="WrongPassword77"))
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines()[-1] == (
        f"regsyncd: cannot connect to the store postgresql://regsync:***@127.0.0.1:"
        f"{postgres.port}/{name}: connection to server at \"127.0.0.1\", port {postgres.port} "
        "failed: FATAL: password authentication failed for user \"regsync\"")
    assert "WrongPassword77" not in wrong.stderr + wrong.stdout

    port = free_port()
    down = serve(f"postgresql://regsync:{postgres.password}@127.0.0.1:{port}/{name}")
    assert down.returncode == 1
    assert "Connection refused" in down.stderr and postgres.password not in down.stderr
    assert f"cannot connect to the store postgresql://regsync:***@127.0.0.1:{port}/" in down.stderr
    assert "Traceback" not in down.stderr


def test_daemons_sharing_postgresql_leave_each_others_live_runs_alone(
    registry: RegistryServer, registry2: RegistryServer, slow_source: CountingProxy,
    pg_url: str, tmp_path: Path,
) -> None:
    """A second daemon starts on the same database while the first one runs an execution: it
    leaves that run alone. When the first is killed -9, the next daemon to start takes its run
    over at once (its session's advisory lock is gone), without waiting for the lease to lapse
    as the running second daemon would (test_cluster.py); either daemon may run the resume."""
    tags = [f"1.{i}" for i in range(12)]
    for tag in tags:
        push_image(registry, "app", tag, layers=[random_layer(20_000, seed=tag)])
    first = DaemonProcess(pg_url, tmp_path / "first.log").start()
    first.registries.CreateRegistry(pb.RegistrySpec(name="src", url=slow_source.url))
    first.registries.CreateRegistry(pb.RegistrySpec(name="dst", url=registry2.url))
    first.tasks.CreateTask(pb.TaskSpec(
        name="app", enabled=True, source=pb.Endpoint(registry="src", repository="app"),
        target=pb.Endpoint(registry="dst", repository="app")))
    run = first.tasks.RunTask(pb.NameRequest(name="app"))
    first.wait(run.id, lambda d: d.execution.status == S.EXECUTION_STATUS_RUNNING)

    second = DaemonProcess(pg_url, tmp_path / "second.log").start()
    assert second.execution(run.id).execution.status == S.EXECUTION_STATUS_RUNNING
    final = second.wait(run.id, lambda d: d.execution.status not in ACTIVE)  # seen from 2
    assert final.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    assert sorted(t.tag for t in final.tags) == sorted(tags)
    listed = second.executions.ListExecutions(pb.ListExecutionsRequest(task="app"), timeout=10)
    assert [e.id for e in listed.executions] == [run.id]  # nobody resumed a live run

    for tag in tags:  # the next run has work again: new tags
        push_image(registry, "app", f"2.{tag}", layers=[random_layer(20_000, seed=f"2{tag}")])
    killed = first.tasks.RunTask(pb.NameRequest(name="app"))
    first.wait(killed.id, lambda d: len(d.tags) >= 2)
    first.kill()
    third = DaemonProcess(pg_url, tmp_path / "third.log").start()
    assert third.execution(killed.id).execution.status == S.EXECUTION_STATUS_INTERRUPTED
    listed = third.executions.ListExecutions(pb.ListExecutionsRequest(task="app"), timeout=10)
    resume = listed.executions[0]
    assert (resume.trigger, resume.parent_id) == (pb.TRIGGER_RESUME, killed.id)
    done = third.wait(resume.id, lambda d: d.execution.status not in ACTIVE)
    assert done.execution.status == S.EXECUTION_STATUS_SUCCEEDED
    for tag in tags:
        assert manifest_digest(registry2, "app", f"2.{tag}") == manifest_digest(
            registry, "app", f"2.{tag}")
    assert second.terminate() == 0 and third.terminate() == 0
