"""Pruning through the real daemon, driven with regsyncctl: a task that prunes, its plan, the
limit stopping a run, `run --force-prune`, and the deletions in `executions show`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
import yaml
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.settings import GlobalSettings, RetrySettings
from support.ctlrun import Cli
from support.images import manifest_digest, push_image, random_layer
from support.registry import RegistryServer

pytestmark = pytest.mark.integration



def _delete(server: RegistryServer, repo: str, digest: str) -> None:
    assert httpx.delete(f"{server.url}/v2/{repo}/manifests/{digest}").status_code == 202


@pytest.fixture
async def cli(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Cli]:
    fast = GlobalSettings(retry=RetrySettings(max_attempts=2, initial_interval=0.01,
                                              max_interval=0.05))
    options = ServeOptions(db_path=str(tmp_path / "db"), listen="127.0.0.1:0", ui_port=None,
                           global_settings=fast)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    yield Cli(daemon.address)
    await daemon.shutdown()


async def test_a_pruning_task_through_the_daemon(
    cli: Cli, registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    digests = {t: push_image(registry, "app", t, layers=[random_layer(64, t)], oci=True)
               for t in ("1.0", "1.1", "1.2")}
    assert (await cli.both("registries", "add", "src", "--url", registry.url))[0] == 0
    assert (await cli.both("registries", "add", "dst", "--url", registry2.url))[0] == 0
    code, out = await cli.both("tasks", "add", "app", "--source", "src/app", "--target", "dst/m",
                          "--prune", "--prune-max", "1")
    assert code == 0, out
    code, out = await cli.both("tasks", "show", "app")
    assert "yes, at most 1 a run" in out
    code, out = await cli.both("tasks", "add", "other", "--source", "src/other", "--target", "dst/m")
    assert code == 1 and "the target repository is pruned by rule 'app'" in out, out
    code, out = await cli.both("tasks", "add", "elsewhere", "--source", "src/other", "--target",
                          "dst/elsewhere")
    assert code == 0, out
    code, out = await cli.both("tasks", "edit", "elsewhere", "--target", "dst/m")
    assert code == 1 and "pruned by rule 'app'" in out, out
    document = tmp_path / "sync.yaml"
    document.write_text(yaml.safe_dump({"registries": {"dst": {"url": registry2.url}},
                                        "sync_rules": [{
                                            "name": "p", "prune": True,
                                            "source": {"registry": "dst", "repository": "x"},
                                            "target": {"registry": "dst",
                                                       "repository": "elsewhere"}}]}))
    code, out = await cli.both("apply", "-f", str(document))
    assert code == 1 and "also written by rule 'elsewhere'" in out, out
    code, out = await cli.both("tasks", "show", "p")
    assert code == 1, out  # nothing of that Apply was kept
    code, out = await cli.both("run", "app", "--follow")
    assert code == 0, out

    for tag in ("1.0", "1.1"):
        _delete(registry, "app", digests[tag])
    code, out = await cli.both("plan", "app")
    assert code == 0, out
    assert "2 target tags to prune after the copies" in out
    assert "note: prune stopped: it would delete 2 of 3 target tags, over prune_max 1" in out

    code, out = await cli.both("run", "app", "--follow")
    assert code == 1 and "prune stopped" in out, out
    assert manifest_digest(registry2, "m", "1.0") == digests["1.0"]

    code, out = await cli.both("run", "app", "--follow", "--force-prune")
    assert code == 0, out
    assert manifest_digest(registry2, "m", "1.0") is None
    assert manifest_digest(registry2, "m", "1.1") is None
    assert manifest_digest(registry2, "m", "1.2") == digests["1.2"]
    code, out = await cli.both("executions", "show", "app")
    assert "pruned:     2 target tags deleted" in out, out
    assert "1.0  deleted" in out and "pruned: not in the rule's selection" in out
    code, out = await cli.both("logs", "app")
    assert f"pruned 1.0 ({digests['1.0']})" in out
    assert "prune forced past prune_max 1" in out
