"""A run of 100,000 tags is readable: through the real daemon's API (paged, each reply far below
gRPC's 4 MiB), `regsyncctl executions show`, `run --follow`'s final summary and `retry`.

The results are written through the store's own API (support/bigrun.py), not by syncing 100,000
tags; the daemon then serves that store as it would any other. (The panel's side is in
tests/ui/test_big_execution.py.)
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from regsync.ctl.client import Daemon as CtlDaemon
from regsync.ctl.client import Target
from regsync.ctl.follow import follow
from regsync.ctl.main import main as ctl
from regsync.ctl.progress import summary
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.settings import GlobalSettings, RetrySettings
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.bigrun import TAGS, seed_big_execution

pytestmark = pytest.mark.integration

FAST = GlobalSettings(retry=RetrySettings(max_attempts=1), timeout=5)
MESSAGE_LIMIT = 4 * 1024 * 1024  # grpc's default for a client's received message


class Big:
    def __init__(self, address: str, execution_id: int) -> None:
        self.address, self.id = address, execution_id
        self.channel = grpc.insecure_channel(address)  # default limits, as every client has
        self.executions = rpc.ExecutionServiceStub(self.channel)

    async def get(self, **fields: Any) -> pb.ExecutionDetail:
        request = pb.ExecutionRequest(id=self.id, **fields)
        detail: pb.ExecutionDetail = await trio.to_thread.run_sync(
            lambda: self.executions.GetExecution(request, timeout=30))
        return detail

    async def ctl(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await trio.to_thread.run_sync(lambda: ctl(
            ["--server", self.address, *argv], stdout=out, stderr=err, stdin=io.StringIO(),
            environ={}))
        return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One store written once (~3 s); each test gets its own copy."""
    db = tmp_path_factory.mktemp("big") / "regsync.db"
    return db, seed_big_execution(db)


@pytest.fixture
async def big(seeded: tuple[Path, int], tmp_path: Path, nursery: trio.Nursery
              ) -> AsyncIterator[Big]:
    template, execution_id = seeded
    db = tmp_path / "regsync.db"
    shutil.copyfile(template, db)
    options = ServeOptions(db_path=str(db), listen="127.0.0.1:0", ui_port=None,
                           shutdown_grace=1.0, global_settings=FAST)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    client = Big(daemon.address, execution_id)
    yield client
    client.channel.close()
    await daemon.shutdown()


def tag_names(tags: Any) -> list[str]:
    return [t.tag for t in tags]


async def test_get_execution_pages_its_results(big: Big) -> None:
    first = await big.get()  # a client that knows nothing of pages gets the first one
    assert first.execution.counters.tags_total == TAGS and first.total_tags == TAGS
    assert tag_names(first.tags) == [f"1.{i}" for i in range(1000)]
    assert first.next_page_token and first.ByteSize() < MESSAGE_LIMIT // 4
    huge = await big.get(page_size=2**31 - 1)  # capped, not refused
    assert len(huge.tags) == 5000 and huge.ByteSize() < MESSAGE_LIMIT // 2

    seen: list[str] = []
    token = ""
    while True:
        page = await big.get(page_size=5000, page_token=token)
        seen += tag_names(page.tags)
        if not (token := page.next_page_token):
            break
    assert seen == [f"1.{i}" for i in range(TAGS)]


async def test_get_logs_pages_a_big_log(big: Big) -> None:
    logs = rpc.ExecutionServiceStub(big.channel)

    def get(**fields: Any) -> pb.LogsResponse:
        reply: pb.LogsResponse = logs.GetLogs(pb.LogsRequest(execution_id=big.id, **fields),
                                              timeout=30)
        return reply

    first = await trio.to_thread.run_sync(get)  # "0 means all": one reply's worth of them
    assert first.total == TAGS and len(first.lines) == 5000
    assert first.ByteSize() < MESSAGE_LIMIT // 4
    last = await trio.to_thread.run_sync(lambda: get(offset=TAGS - 3, limit=2**31 - 1))
    assert [line.message.split(":")[0] for line in last.lines] == [
        f"line {i}" for i in range(TAGS - 3, TAGS)]


async def test_regsyncctl_shows_every_tag_of_a_big_run(big: Big) -> None:
    code, out, err = await big.ctl("executions", "show", str(big.id))
    assert code == 0, err
    assert "1.0 " in out and "1.99999 " in out and out.count("[not-found] manifest unknown") == TAGS // 10
    code, out, err = await big.ctl("-o", "json", "executions", "show", str(big.id))
    assert code == 0, err
    shown = json.loads(out)
    assert len(shown["tags"]) == TAGS and int(shown["execution"]["counters"]["tags_total"]) == TAGS
    code, out, err = await big.ctl("logs", str(big.id))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == TAGS and "line 0: " in lines[0] and "line 99999: " in lines[-1]
    code, out, err = await big.ctl("-o", "json", "logs", str(big.id))
    assert code == 0, err
    assert len(json.loads(out)["lines"]) == TAGS


async def test_follow_ends_with_every_failed_tag_in_the_summary(big: Big) -> None:
    """`run --follow` and `retry --follow` end with `follow()` and `summary()`."""
    daemon = CtlDaemon(Target(big.address))
    events: list[pb.WatchEvent] = []
    detail = await trio.to_thread.run_sync(
        lambda: follow(daemon, big.id, on_event=events.append))
    assert len(detail.tags) == TAGS
    failed = [t for t in detail.tags if t.outcome == ev.TAG_OUTCOME_FAILED]
    assert len(failed) == TAGS // 10
    text = summary(detail)
    assert "1.99999: [not-found] manifest unknown (404)" in text


async def test_retry_of_a_big_run_starts_and_follows(big: Big) -> None:
    code, out, err = await big.ctl("retry", str(big.id), "--follow")
    assert code == 1, out + err  # the source is unreachable: the retry fails, and says so
    assert "FAILED" in out + err and f"execution {big.id + 1}" in out + err
