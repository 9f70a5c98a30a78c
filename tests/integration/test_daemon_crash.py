"""regsyncd as a real process: kill -9 in the middle of a sync, restart, resume to an exact copy.

A probe watches the target the whole time: every tag it can see must resolve completely (the
manifest, its children, every blob), because a target tag is written only after its content.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from support.daemonprocess import DaemonProcess
from support.images import manifest_digest, push_image, push_index, random_layer
from support.proxy import CountingProxy
from support.registry import RegistryServer

pytestmark = pytest.mark.integration

S = pb.ExecutionStatus
ACCEPT = (
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)


class Probe:
    """Looks at every tag of the target repository, over and over, until stopped."""

    def __init__(self, server: RegistryServer, repo: str) -> None:
        self.server, self.repo = server, repo
        self.looks = 0
        self.broken: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        with httpx.Client(base_url=f"{self.server.url}/v2/{self.repo}", timeout=10) as http:
            while not self._stop.is_set():
                resp = http.get("/tags/list")
                for tag in (resp.json().get("tags") or []) if resp.status_code == 200 else []:
                    # the registry lists a tag a moment before it serves it: absent, not broken
                    if http.head(f"/manifests/{tag}", headers={"Accept": ACCEPT}).status_code == 404:
                        continue
                    problem = self._resolve(http, tag)
                    if problem:
                        self.broken.append(f"{tag}: {problem}")
                    self.looks += 1

    def _resolve(self, http: httpx.Client, ref: str) -> str:
        resp = http.get(f"/manifests/{ref}", headers={"Accept": ACCEPT})
        if resp.status_code != 200:
            return f"manifest {ref} -> {resp.status_code}"
        doc = json.loads(resp.content)
        for child in doc.get("manifests", []):
            problem = self._resolve(http, child["digest"])
            if problem:
                return problem
        for blob in [doc.get("config")] + doc.get("layers", []) if "config" in doc else []:
            if http.head(f"/blobs/{blob['digest']}").status_code != 200:
                return f"blob {blob['digest']} missing"
        return ""


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The daemons' --db on each engine."""
    if request.param == "sqlite":
        return str(tmp_path / "regsync.db")
    return str(request.getfixturevalue("pg_url"))


def assert_no_password(store: str, log: Path) -> None:
    """The daemon's whole output names the store with its password masked, if at all."""
    if store.startswith("postgresql://"):
        secret = store.split(":")[2].split("@")[0]
        text = log.read_text()
        assert secret not in text
        assert f"store {store.replace(secret, '***')}" in text


@pytest.fixture
def slow_source(registry: RegistryServer) -> Iterator[CountingProxy]:
    """The source, with every blob download held back 150 ms: a run takes seconds, not ms."""

    def slow(request: Any) -> None:
        if "/blobs/" in request.path and request.method == "GET":
            time.sleep(0.15)

    with CountingProxy(registry, fault=slow) as proxy:
        yield proxy


@pytest.mark.parametrize(
    ("kill_after", "engine"),
    [((2,), "sqlite"), ((1, 3, 2), "sqlite"), ((2,), "postgresql")],
    ids=["once", "three-times", "once-postgresql"],
)
def test_kill_9_mid_sync_then_resume_to_an_exact_copy(
    registry: RegistryServer, registry2: RegistryServer, slow_source: CountingProxy,
    tmp_path: Path, kill_after: tuple[int, ...], engine: str, request: pytest.FixtureRequest,
) -> None:
    """Kill -9 after the running execution stored `n` results, for each n; restart each time."""
    tags = [f"1.{i}" for i in range(14)]
    base = random_layer(50_000, seed="base")
    for tag in tags[:-2]:
        push_image(registry, "app", tag, layers=[base, random_layer(30_000, seed=tag)])
    for tag in tags[-2:]:
        push_index(registry, "app", tag, shared_base=base)

    store = str(tmp_path / "regsync.db") if engine == "sqlite" else request.getfixturevalue(
        "pg_url")
    daemon = DaemonProcess(store, tmp_path / "daemon.log").start()
    daemon.registries.CreateRegistry(pb.RegistrySpec(name="src", url=slow_source.url))
    daemon.registries.CreateRegistry(pb.RegistrySpec(name="dst", url=registry2.url))
    daemon.tasks.CreateTask(pb.TaskSpec(
        name="app", enabled=True, source=pb.Endpoint(registry="src", repository="app"),
        target=pb.Endpoint(registry="dst", repository="app")))

    done: set[str] = set()
    with Probe(registry2, "app") as probe:
        current = daemon.tasks.RunTask(pb.NameRequest(name="app")).id
        for n in kill_after:
            daemon.wait(current, lambda d, n=n: len(d.tags) >= n)  # n results stored
            daemon.kill()  # SIGKILL: no chance to record anything
            daemon.start()  # same store: it opens cleanly
            old = daemon.execution(current)
            assert old.execution.status == S.EXECUTION_STATUS_INTERRUPTED
            finished = {t.tag for t in old.tags}
            assert finished and not finished & done  # a resume never redoes a finished tag
            done |= finished
            listed = daemon.executions.ListExecutions(pb.ListExecutionsRequest(task="app"))
            newest, *older = listed.executions
            assert newest.trigger == pb.TRIGGER_RESUME and newest.parent_id == current
            assert all(e.status not in (S.EXECUTION_STATUS_QUEUED, S.EXECUTION_STATUS_RUNNING)
                       for e in older)  # nothing stays running after a crash
            current = newest.id
        final = daemon.wait(current, lambda d: d.execution.status not in (
            S.EXECUTION_STATUS_QUEUED, S.EXECUTION_STATUS_RUNNING))
    assert final.execution.status == S.EXECUTION_STATUS_SUCCEEDED, final
    # only what the killed runs had not finished was synced again
    assert {t.tag for t in final.tags} == set(tags) - done
    for tag in tags:
        assert manifest_digest(registry2, "app", tag) == manifest_digest(registry, "app", tag)
    assert probe.looks > 0 and probe.broken == []
    assert daemon.terminate() == 0  # SIGTERM: a clean exit
    assert_no_password(store, tmp_path / "daemon.log")


def test_sigterm_interrupts_a_long_run_and_the_next_start_resumes_it(
    registry: RegistryServer, registry2: RegistryServer, slow_source: CountingProxy,
    tmp_path: Path, store: str,
) -> None:
    """40 tags, one slow blob at a time: longer than the 10 s shutdown grace period."""
    tags = [f"{i}" for i in range(40)]
    for i, tag in enumerate(tags):
        push_image(registry, "app", tag, layers=[random_layer(20_000, seed=i)])
    daemon = DaemonProcess(store, tmp_path / "daemon.log").start()
    daemon.registries.CreateRegistry(pb.RegistrySpec(name="src", url=slow_source.url))
    daemon.registries.CreateRegistry(pb.RegistrySpec(name="dst", url=registry2.url))
    daemon.tasks.CreateTask(pb.TaskSpec(
        name="app", source=pb.Endpoint(registry="src", repository="app"),
        target=pb.Endpoint(registry="dst", repository="app")))
    run = daemon.tasks.RunTask(pb.NameRequest(name="app"))
    daemon.wait(run.id, lambda d: d.execution.status == S.EXECUTION_STATUS_RUNNING)
    assert daemon.terminate() == 0
    assert "SIGTERM received" in (tmp_path / "daemon.log").read_text()

    daemon.start()
    stopped = daemon.execution(run.id).execution
    assert (stopped.status, stopped.error) == (
        S.EXECUTION_STATUS_INTERRUPTED, "interrupted by daemon shutdown")
    listed = daemon.executions.ListExecutions(pb.ListExecutionsRequest(task="app"), timeout=10)
    [resume] = [e for e in listed.executions if e.parent_id == run.id]
    assert resume.trigger == pb.TRIGGER_RESUME
    final = daemon.wait(resume.id, lambda d: d.execution.status not in (
        S.EXECUTION_STATUS_QUEUED, S.EXECUTION_STATUS_RUNNING))
    assert final.execution.status == S.EXECUTION_STATUS_SUCCEEDED, final
    for tag in tags:
        assert manifest_digest(registry2, "app", tag) == manifest_digest(registry, "app", tag)
    assert daemon.terminate() == 0
    assert_no_password(store, tmp_path / "daemon.log")
