"""A glob task in the real daemon against real registries: the scope of each execution, what is
new and what was removed between runs (API, regsyncctl), and the wizard's repository preview."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import trio
from regsync.ctl.main import main as ctl
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.images import manifest_digest, push_image, random_layer
from support.registry import RegistryServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def address(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[str]:
    options = ServeOptions(db_path=str(tmp_path / "db"), listen="127.0.0.1:0", ui_port=None)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    yield daemon.address
    await daemon.shutdown()


async def cli(address: str, *argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await trio.to_thread.run_sync(lambda: ctl(
        ["--server", address, *argv], stdout=out, stderr=err, stdin=io.StringIO(), environ={}))
    return code, out.getvalue() + err.getvalue()


def delete_repository(server: RegistryServer, name: str) -> None:
    """What deleting a repository leaves in distribution's filesystem storage: no trace in the
    catalog (the registry has no API to delete a repository as a whole)."""
    shutil.rmtree(Path(server.data_dir) / "docker/registry/v2/repositories" / name)


async def last_execution(address: str) -> dict[str, object]:
    code, out = await cli(address, "-o", "json", "executions", "list", "--task", "team")
    assert code == 0, out
    newest: dict[str, object] = json.loads(out)["executions"][0]
    return newest


async def test_a_repository_added_and_one_deleted_between_runs_are_reported(
    address: str, registry: RegistryServer, registry2: RegistryServer
) -> None:
    for repo in ("team-a/web", "team-a/api", "team-a/db.x_y-z"):
        push_image(registry, repo, "1.0", layers=[random_layer(1000, seed=repo)])
    assert (await cli(address, "registries", "add", "src", "--url", registry.url))[0] == 0
    assert (await cli(address, "registries", "add", "dst", "--url", registry2.url))[0] == 0
    code, out = await cli(address, "tasks", "add", "team", "--source", "src/team-a/*",
                          "--target", "dst/dr/*")
    assert code == 0, out
    code, out = await cli(address, "run", "team", "--follow")
    assert code == 0, out
    first = await last_execution(address)
    assert first["repositories"] == {"matched": "3", "added": "3", "removed": "0"}  # nothing before: all new

    push_image(registry, "team-a/new", "2.0", layers=[random_layer(1000, seed="new")])
    delete_repository(registry, "team-a/api")
    code, out = await cli(address, "run", "team", "--follow")
    assert code == 0, out
    second = await last_execution(address)
    assert second["repositories"] == {"matched": "3", "added": "1", "removed": "1"}
    assert manifest_digest(registry2, "dr/new", "2.0") == \
        manifest_digest(registry, "team-a/new", "2.0")

    code, out = await cli(address, "executions", "show", str(second["id"]))
    assert code == 0, out
    lines = out.splitlines()
    assert "repositories:  3 matched, 1 new, 1 removed" in lines
    assert lines[lines.index("new repositories:") + 1] == "  team-a/new"
    assert lines[lines.index("removed repositories:") + 1] == "  team-a/api"
    rows = [line.split() for line in lines if line.startswith("team-a/")]
    assert ["team-a/new", "(new)", "2.0", "copied"] in [row[:4] for row in rows]
    assert {row[0] for row in rows} == {"team-a/new", "team-a/web", "team-a/db.x_y-z"}

    code, out = await cli(address, "-o", "json", "executions", "show", str(second["id"]))
    shown = json.loads(out)
    assert shown["new_repositories"] == ["team-a/new"]
    assert shown["removed_repositories"] == ["team-a/api"]

    # nothing changed: nothing new, nothing removed (compared with the last whole scope)
    assert (await cli(address, "run", "team", "--follow"))[0] == 0
    assert (await last_execution(address))["repositories"] == {"matched": "3", "added": "0",
                                                              "removed": "0"}


def _preview(address: str, request: pb.PreviewRepositoriesRequest,
             ) -> pb.PreviewRepositoriesResponse:
    with grpc.insecure_channel(address) as channel:
        reply: pb.PreviewRepositoriesResponse = rpc.TaskServiceStub(
            channel).PreviewRepositories(request, timeout=30)
        return reply


async def test_the_repository_preview_is_bounded_and_counts_tags(
    address: str, registry: RegistryServer
) -> None:
    for n in range(4):
        for tag in ("1.0", "1.1", "1.1-alpine")[: n + 1]:
            push_image(registry, f"team-a/r{n}", tag, layers=[random_layer(500, seed=n)])
    push_image(registry, "team-b/r9", "1.0", layers=[random_layer(500, seed=9)])
    assert (await cli(address, "registries", "add", "src", "--url", registry.url))[0] == 0
    spec = pb.TaskSpec(source=pb.Endpoint(registry="src", repository="team-a/*"),
                       target=pb.Endpoint(registry="src", repository="dr/*"),
                       tags=pb.TagFilter(exclude=["alpine$"]))
    found = await trio.to_thread.run_sync(
        _preview, address, pb.PreviewRepositoriesRequest(spec=spec, limit=3))
    assert [(r.source, r.target, r.tags, r.kept) for r in found.repositories] == [
        ("team-a/r0", "dr/r0", 1, 1), ("team-a/r1", "dr/r1", 2, 2), ("team-a/r2", "dr/r2", 3, 2)]
    assert found.truncated and found.limit == 3
    whole = await trio.to_thread.run_sync(
        _preview, address, pb.PreviewRepositoriesRequest(spec=spec))
    assert len(whole.repositories) == 4 and not whole.truncated and whole.limit == 50
    spec.ClearField("target")  # the task need not exist: a missing target keeps the wildcards
    untargeted = await trio.to_thread.run_sync(
        _preview, address, pb.PreviewRepositoriesRequest(spec=spec, limit=1))
    assert [(r.source, r.target) for r in untargeted.repositories] == [
        ("team-a/r0", "preview/team-a/r0")]

    plain = pb.TaskSpec(source=pb.Endpoint(registry="src", repository="team-a/r0"))
    with pytest.raises(grpc.RpcError) as refused:
        await trio.to_thread.run_sync(
            _preview, address, pb.PreviewRepositoriesRequest(spec=plain))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a glob" in (refused.value.details() or "")
