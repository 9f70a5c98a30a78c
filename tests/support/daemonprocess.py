"""`regsyncd serve` as a real process, driven over gRPC (kill -9, SIGTERM, restart)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

from support.registry import free_port

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")
_STARTED: list[subprocess.Popen[bytes]] = []


def kill_leftovers() -> None:
    """Kill -9 every daemon a test started and left running (a failed assertion, say)."""
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


class DaemonProcess:
    """`regsyncd serve --db DB`, DB a file path or a PostgreSQL URL; `lease` shortens the
    leases of a shared store (seconds), `max_running` is `--max-running`."""

    def __init__(self, db: Path | str, log: Path, *, lease: float | None = None,
                 max_running: int | None = None) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.db, self.log = str(db), log
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        if lease is not None:
            self.env["REGSYNC_LEASE_SECONDS"] = str(lease)
        self.extra = ["--max-running", str(max_running)] if max_running is not None else []

    def start(self) -> DaemonProcess:
        # one blob at a time: a run lasts long enough to be killed in the middle, every time
        config = self.log.with_name("global.yaml")
        config.write_text('version: "1.0"\nglobal: {concurrency: 1}\n')
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [REGSYNCD, "serve", "--db", self.db, "--listen", self.address,
                 "--ui-port", "0", "--config", str(config), *self.extra],
                stdout=log, stderr=log, env=self.env,
            )
        _STARTED.append(self.proc)
        channel = grpc.insecure_channel(self.address)
        grpc.channel_ready_future(channel).result(timeout=20)
        self.tasks = rpc.TaskServiceStub(channel)
        self.registries = rpc.RegistryServiceStub(channel)
        self.executions = rpc.ExecutionServiceStub(channel)
        self.control = rpc.ControlServiceStub(channel)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def execution(self, id: int) -> pb.ExecutionDetail:
        detail: pb.ExecutionDetail = self.executions.GetExecution(
            pb.ExecutionRequest(id=id), timeout=10)
        return detail

    def wait(self, id: int, until: Any, timeout: float = 60) -> pb.ExecutionDetail:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            detail = self.execution(id)
            if until(detail):
                return detail
            time.sleep(0.05)
        raise AssertionError(f"execution {id} did not get there: {detail}")
