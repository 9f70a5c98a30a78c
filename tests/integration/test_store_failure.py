"""A failing store is not a dying daemon: the store on a real file system of its own that fills
up (a small tmpfs) or turns read-only (ext4 on a loop device, remounted read-only by the kernel
after an error, as a failing disk does) in the middle of a run.

The run fails with the store's reason, the daemon and its read API stay up and say how the run
ended, the end is recorded once space is back (no execution stays "running"), and new runs work
again. The mounts are real (CI and this test bed run as root) and always unmounted.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.settings import GlobalSettings, RetrySettings
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.fakeregistry import FakeRegistry
from support.proxy import CountingProxy, Fault, ProxyRequest

pytestmark = pytest.mark.integration

S = pb.ExecutionStatus
FAST = GlobalSettings(retry=RetrySettings(max_attempts=1, initial_interval=0.01,
                                          max_interval=0.05), timeout=5)
TAGS = [f"1.{i}" for i in range(600)]  # each HEAD answered 404 after 0.1 s: a run of ~2-3 s


@pytest.fixture(params=["tmpfs", "ext4"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A file system of its own (never the test machine's disk), unmounted whatever happens:
    a 16 MiB tmpfs, or a 32 MiB ext4 image on a loop device (errors=remount-ro)."""
    mount_point = tmp_path / "store"
    mount_point.mkdir()
    if request.param == "tmpfs":
        command = ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"]
    else:
        image = tmp_path / "store.img"
        with open(image, "wb") as out:
            out.truncate(32 * 1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
        command = ["mount", "-o", "loop,errors=remount-ro", str(image)]
    subprocess.run([*command, str(mount_point)], check=True, capture_output=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)  # frees the loop device


def break_file_system(mount_point: Path) -> None:
    """What the kernel does when ext4 meets an error: remount it read-only at once, open files
    and all (only a repair and a new mount make it writable again)."""
    device = subprocess.run(["findmnt", "-no", "SOURCE", str(mount_point)], check=True,
                            capture_output=True, text=True).stdout.strip()
    Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").write_text("regsync test\n")
    options = subprocess.run(["findmnt", "-no", "OPTIONS", str(mount_point)], check=True,
                             capture_output=True, text=True).stdout
    assert "emergency_ro" in options or options.startswith("ro"), options


def fill(directory: Path) -> Path:
    """Write a filler file until the file system refuses: a really full disk."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        for size in (4096, 512, 1):  # the last few bytes too
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                pass
    return filler


class Api:
    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.registries = rpc.RegistryServiceStub(self.channel)
        self.tasks = rpc.TaskServiceStub(self.channel)
        self.executions = rpc.ExecutionServiceStub(self.channel)
        self.control = rpc.ControlServiceStub(self.channel)

    async def __call__(self, method: Any, request: Any) -> Any:
        return await trio.to_thread.run_sync(lambda: method(request, timeout=20))

    async def detail(self, id: int) -> pb.ExecutionDetail:
        detail: pb.ExecutionDetail = await self(self.executions.GetExecution,
                                                pb.ExecutionRequest(id=id))
        return detail

    async def wait_status(self, id: int, statuses: set[int], timeout: float = 30) -> Any:
        with trio.fail_after(timeout):
            while (detail := await self.detail(id)).execution.status not in statuses:
                await trio.sleep(0.1)
        return detail

    async def wait_not_running(self, task: str, timeout: float = 30) -> None:
        with trio.fail_after(timeout):
            while (await self(self.tasks.GetTask, pb.NameRequest(name=task))).running:
                await trio.sleep(0.1)


@pytest.fixture
async def daemon(small_disk: Path, nursery: trio.Nursery) -> AsyncIterator[tuple[Api, Path]]:
    """A daemon whose store lives on `small_disk`; task t copies from a slow, tag-rich source."""
    fake = FakeRegistry()
    fake.tags["src"] = list(TAGS)  # listed, never pushed: every tag ends failed (404)

    def slow_heads(request: ProxyRequest) -> Fault | None:
        return Fault.slow(0.1) if request.method == "HEAD" else None

    with fake, CountingProxy(fake.url, fault=slow_heads) as proxy:
        options = ServeOptions(db_path=str(small_disk / "regsync.db"), listen="127.0.0.1:0",
                               ui_port=None, shutdown_grace=1.0, global_settings=FAST)
        serving: Daemon = await nursery.start(Daemon(options).run)
        api = Api(serving.address)
        await api(api.registries.CreateRegistry, pb.RegistrySpec(name="src", url=proxy.url))
        await api(api.registries.CreateRegistry, pb.RegistrySpec(name="dst", url=fake.url))
        await api(api.tasks.CreateTask, pb.TaskSpec(
            name="t", enabled=True, source=pb.Endpoint(registry="src", repository="src"),
            target=pb.Endpoint(registry="dst", repository="dst")))
        yield api, small_disk
        api.channel.close()
        await serving.shutdown()


async def start_and_wait_for_results(api: Api) -> int:
    execution = await api(api.tasks.RunTask, pb.NameRequest(name="t"))
    with trio.fail_after(20):
        while (await api.detail(execution.id)).execution.counters.tags_failed < 40:
            await trio.sleep(0.05)
    return int(execution.id)


async def assert_reads_answer(api: Api, id: int) -> None:
    status = await api(api.control.GetStatus, pb.StatusRequest())
    assert status.version
    listed = await api(api.executions.ListExecutions, pb.ListExecutionsRequest())
    assert id in [e.id for e in listed.executions]
    await api.detail(id)


@pytest.mark.parametrize("small_disk", ["tmpfs"], indirect=True)
async def test_a_full_disk_fails_the_run_and_the_daemon_carries_on(
    daemon: tuple[Api, Path],
) -> None:
    api, disk = daemon
    id = await start_and_wait_for_results(api)
    filler = fill(disk)
    await api.wait_not_running("t")  # the run ended: it cannot record its progress
    await assert_reads_answer(api, id)
    with pytest.raises(grpc.RpcError) as refused:  # a new run cannot even be recorded
        await api(api.tasks.RunTask, pb.NameRequest(name="t"))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "disk is full" in (refused.value.details() or "")

    os.unlink(filler)  # the admin frees space: the owed end is written, the run is failed
    detail = await api.wait_status(id, {S.EXECUTION_STATUS_FAILED})
    assert "the daemon's store failed: database or disk is full" in detail.execution.error
    again = await api(api.tasks.RunTask, pb.NameRequest(name="t"))
    done = await api.wait_status(again.id, {S.EXECUTION_STATUS_FAILED}, timeout=60)
    assert done.execution.counters.tags_failed == len(TAGS)  # every tag recorded, 404 each
    assert "store" not in done.execution.error
    await assert_no_execution_running(api)


@pytest.mark.parametrize("small_disk", ["ext4"], indirect=True)
async def test_a_store_turned_read_only_fails_the_run_and_the_daemon_carries_on(
    daemon: tuple[Api, Path],
) -> None:
    api, disk = daemon
    id = await start_and_wait_for_results(api)
    break_file_system(disk)
    await api.wait_not_running("t")
    await assert_reads_answer(api, id)
    # the store cannot take the end, yet the API says how the run ended, not "running"
    detail = await api.wait_status(id, {S.EXECUTION_STATUS_FAILED}, timeout=5)
    assert "the daemon's store failed: disk I/O error" in detail.execution.error
    assert detail.execution.HasField("finished")
    with pytest.raises(grpc.RpcError) as refused:
        await api(api.tasks.RunTask, pb.NameRequest(name="t"))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"execution {id} ended but the store cannot record it yet" in (
        refused.value.details() or "")
    await assert_no_execution_running(api)


async def assert_no_execution_running(api: Api) -> None:
    listed = await api(api.executions.ListExecutions, pb.ListExecutionsRequest())
    assert [e.status for e in listed.executions if e.status in
            (S.EXECUTION_STATUS_RUNNING, S.EXECUTION_STATUS_QUEUED)] == []
    started = time.monotonic()
    await api(api.control.GetStatus, pb.StatusRequest())
    assert time.monotonic() - started < 1.0
