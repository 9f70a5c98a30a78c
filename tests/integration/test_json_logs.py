"""`regsyncd serve --log-format json` as a real process: every line one JSON object, lines of
an execution carry its task and id, including those the registry client writes inside it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import yaml
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.images import push_image, random_layer
from support.registry import RegistryServer, free_port

pytestmark = pytest.mark.integration

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")


def _run(stub: rpc.TaskServiceStub, executions: rpc.ExecutionServiceStub, task: str) -> int:
    started = stub.RunTask(pb.NameRequest(name=task), timeout=20)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = executions.GetExecution(pb.ExecutionRequest(id=started.id),
                                         timeout=20).execution.status
        if status not in (pb.EXECUTION_STATUS_QUEUED, pb.EXECUTION_STATUS_RUNNING):
            return int(started.id)
        time.sleep(0.05)
    raise AssertionError("execution did not end")


def test_json_lines_name_the_task_and_execution(
    tmp_path: Path, registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_image(registry, "app", "1.0", layers=[random_layer(20_000, seed="j")])
    config = tmp_path / "sync.yaml"
    config.write_text(yaml.safe_dump({
        "version": "1.0",
        "global": {"retry": {"max_attempts": 2, "initial_interval": "10ms",
                             "max_interval": "20ms"}},
        "registries": {"src": {"url": registry.url}, "dst": {"url": registry2.url},
                       "gone": {"url": f"http://127.0.0.1:{free_port()}"}},
        "sync_rules": [
            {"name": "app", "source": {"registry": "src", "repository": "app"},
             "target": {"registry": "dst", "repository": "mirror/app"}},
            {"name": "broken", "source": {"registry": "gone", "repository": "app"},
             "target": {"registry": "dst", "repository": "mirror/broken"}},
        ],
    }))
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path / "regsyncd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [REGSYNCD, "serve", "--db", str(tmp_path / "db"), "--listen", address,
             "--ui-port", "0", "--config", str(config), "--log-format", "json"],
            stdout=out, stderr=out)
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            tasks, executions = rpc.TaskServiceStub(channel), rpc.ExecutionServiceStub(channel)
            ok_id = _run(tasks, executions, "app")
            broken_id = _run(tasks, executions, "broken")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0

    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    ended = [line for line in lines if line["message"].startswith(f"execution {ok_id} ")
             and "succeeded" in line["message"]]
    assert [(e["task"], e["execution_id"], e["level"]) for e in ended] == [
        ("app", ok_id, "info")]
    # the registry client's own retry warning, written inside the broken task's execution
    retries = [line for line in lines if line["logger"].startswith("regsync.daemon.registry")
               and "retrying" in line["message"]]
    assert retries and all((r["task"], r["execution_id"]) == ("broken", broken_id)
                           for r in retries), retries
    failed = [line for line in lines if line["message"].startswith(f"execution {broken_id} ")]
    assert failed[-1]["level"] == "warning" and "failed" in failed[-1]["message"]
    # lines outside any execution carry neither
    start = next(line for line in lines if line["message"].startswith("regsyncd: API on"))
    assert "task" not in start and "execution_id" not in start
