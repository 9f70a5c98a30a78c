"""regsyncctl against the real daemon and real registries, driven as a user would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from regsync.daemon.cli.serve import Daemon, ServeOptions
from regsync.daemon.settings import GlobalSettings, RetrySettings
from support.ctlrun import Cli
from support.images import manifest_digest, push_image, random_layer
from support.registry import RegistryServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def cli(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Cli]:
    fast = GlobalSettings(retry=RetrySettings(max_attempts=2, initial_interval=0.01,
                                              max_interval=0.05))
    options = ServeOptions(db_path=str(tmp_path / "db"), listen="127.0.0.1:0", ui_port=None,
                           global_settings=fast)
    daemon: Daemon = await nursery.start(Daemon(options).run)
    yield Cli(daemon.address)
    await daemon.shutdown()


async def test_a_user_session(
    cli: Cli, basic_registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    push_image(basic_registry, "team/app", "1.0", layers=[random_layer(50_000, seed=1)])
    push_image(basic_registry, "team/app", "1.1", layers=[random_layer(50_000, seed=2)])
    secret = basic_registry.password or ""

    code, out, err = await cli("registries", "add", "src", "--url", basic_registry.url,
                               "--username", "alice", "--password-stdin", stdin=secret + "\n")
    assert code == 0, err
    assert (await cli("registries", "add", "dst", "--url", registry2.url))[0] == 0
    code, out, _ = await cli("registries", "test", "src")
    assert code == 0 and "registry/2.0" in out
    code, out, _ = await cli("-o", "json", "registries", "show", "src")
    shown = json.loads(out)
    assert shown["password_set"] is True and secret not in out

    code, _, err = await cli("tasks", "add", "app", "--source", "src/team/app",
                             "--target", "dst/mirror/app", "--include", r"^1\.")
    assert code == 0, err
    code, out, _ = await cli("plan", "app")
    assert code == 0 and "2 to copy, 0 unchanged, 0 failing" in out

    code, out, err = await cli("run", "app", "--follow")
    assert code == 0, out + err
    assert "succeeded" in (out + err).lower()
    for tag in ("1.0", "1.1"):
        assert manifest_digest(registry2, "mirror/app", tag) == \
            manifest_digest(basic_registry, "team/app", tag)

    code, out, _ = await cli("logs", "app")
    assert code == 0 and "2 tags to sync" in out
    code, out, _ = await cli("-o", "json", "executions", "list", "--task", "app")
    (execution,) = json.loads(out)["executions"]
    assert execution["status"] == "EXECUTION_STATUS_SUCCEEDED"
    assert execution["counters"]["tags_copied"] == "2"
    code, out, _ = await cli("-o", "json", "stats")
    assert json.loads(out)["succeeded_total"] == "1"

    config = tmp_path / "more.yaml"
    config.write_text(
        'version: "1.0"\nregistries:\n'
        f'  src2: {{url: "{registry2.url}"}}\n'
        "sync_rules:\n  - name: back\n    source: {registry: src2, repository: mirror/app}\n"
        "    target: {registry: dst, repository: back/app}\n"
    )
    code, out, err = await cli("apply", "-f", str(config))
    assert code == 0, err
    code, out, _ = await cli("tasks", "list")
    assert "back" in out and "app" in out

    for what in ("registries", "tasks", "executions"):
        code, out, err = await cli("-o", "json", what, "list")
        assert code == 0 and secret not in out + err


async def test_apply_expands_the_users_own_file_on_the_client(
    cli: Cli, basic_registry: RegistryServer, tmp_path: Path
) -> None:
    """The daemon refuses `${VAR}` and anchors in an applied file; `--expand-env` resolves both
    in regsyncctl, from the user's environment, and the daemon stores the values literally."""
    config = tmp_path / "sync.yaml"
    config.write_text(
        'version: "1.0"\nregistries:\n'
        "  src: {url: '${SRC_URL}', username: alice, password: '${SRC_PASSWORD}'}\n"
        "  dst: {url: 'http://127.0.0.1:1'}\n"
        "sync_rules:\n"
        "  - {name: a, source: {registry: src, repository: team/a},\n"
        "     target: {registry: dst, repository: mirror/a}, tags: &tags {include: ['^1[.]']}}\n"
        "  - {name: b, source: {registry: src, repository: team/b},\n"
        "     target: {registry: dst, repository: mirror/b}, tags: *tags}\n")
    env = {"SRC_URL": basic_registry.url, "SRC_PASSWORD": basic_registry.password or ""}
    code, _, err = await cli("apply", "-f", str(config), env=env)
    assert code == 1 and "${SRC_URL} is not expanded" in err  # the daemon's rule holds
    code, out, err = await cli("apply", "-f", str(config), "--expand-env", env=env)
    assert code == 0, err
    assert "task a created" in out and "task b created" in out
    code, out, _ = await cli("registries", "test", "src")
    assert code == 0 and "registry/2.0" in out  # the password arrived as the user's shell has it
    code, out, _ = await cli("-o", "json", "tasks", "show", "b")
    assert json.loads(out)["spec"]["tags"]["include"] == ["^1[.]"]  # from the anchor
    code, _, err = await cli("apply", "-f", str(config), "--expand-env", env={})
    assert code == 64 and "environment variable SRC_URL is not set" in err


async def test_errors_are_one_line_with_exit_codes(cli: Cli) -> None:
    code, _, err = await cli("tasks", "show", "nope")
    assert code == 1 and err.startswith("regsyncctl: ") and "nope" in err
    assert "Traceback" not in err and err.count("\n") == 1
    code, _, err = await cli("tasks", "add", "t", "--source", "x/a", "--target", "y/b")
    assert code == 1 and "registry" in err
    code, _, err = await cli("run", "missing")
    assert code == 1
    unreachable = Cli(f"127.0.0.1:{free_port()}")
    code, _, err = await unreachable("--timeout", "3", "stats")
    assert code == 2 and "cannot reach regsyncd" in err


async def test_a_glob_task_from_the_command_line(
    cli: Cli, registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    """`tasks add --source src/team-a/**`: the daemon's own message for a bad mapping (add,
    edit, apply), then plan, run and `executions show` grouped by repository."""
    for repo in ("team-a/web", "team-a/api/v2", "team-a/old/x", "team-b/web"):
        push_image(registry, repo, "1.0", layers=[random_layer(2000, seed=repo)])
    assert (await cli("registries", "add", "src", "--url", registry.url))[0] == 0
    assert (await cli("registries", "add", "dst", "--url", registry2.url))[0] == 0

    code, _, err = await cli("tasks", "add", "team", "--source", "src/team-a/**",
                             "--target", "dst/dr/*")
    assert code == 1 and "task.target.repository: 'dr/*' must have the same wildcards" in err
    code, _, err = await cli("tasks", "add", "team", "--source", "src/team-a/**",
                             "--target", "dst/dr/team-a/**", "--exclude-repo", "team-a/old/**")
    assert code == 0, err
    code, _, err = await cli("tasks", "edit", "team", "--target", "dst/dr/x")
    assert code == 1 and "task.target.repository: 'dr/x' must have the same wildcards" in err
    config = tmp_path / "bad.yaml"
    config.write_text('version: "1.0"\nsync_rules:\n  - name: other\n'
                      "    source: {registry: src, repository: 'library/*'}\n"
                      "    target: {registry: dst, repository: 'mirror/**'}\n")
    code, _, err = await cli("apply", "-f", str(config))
    assert code == 1 and 'sync_rules[0] "other": target.repository' in err

    code, out, _ = await cli("tasks", "show", "team")
    assert "exclude repos:" in out and "team-a/old/**" in out
    code, out, err = await cli("plan", "team")
    assert code == 0, err
    assert "2 to copy, 0 unchanged, 0 failing, 0 filtered out in 2 repositories" in out
    code, out, err = await cli("run", "team", "--follow")
    assert code == 0, out + err
    code, out, _ = await cli("executions", "show", "latest")
    rows = [line.split()[:4] for line in out.splitlines() if line.startswith("team-")]
    # the task's first execution: every repository is new to it
    assert rows == [["team-a/api/v2", "(new)", "1.0", "copied"],
                    ["team-a/web", "(new)", "1.0", "copied"]]
    code, out, _ = await cli("-o", "json", "executions", "show", "latest")
    assert {t["repository"] for t in json.loads(out)["tags"]} == {"team-a/web", "team-a/api/v2"}
    assert manifest_digest(registry2, "dr/team-a/api/v2", "1.0") == \
        manifest_digest(registry, "team-a/api/v2", "1.0")


async def test_plan_of_a_glob_on_a_registry_without_catalog(cli: Cli, registry2: RegistryServer
                                                            ) -> None:
    from support.fakeregistry import FakeRegistry, _error

    with FakeRegistry() as fake:
        fake.hook = lambda m, p, q: _error(401, "UNAUTHORIZED", "no") if "_catalog" in p else None
        assert (await cli("registries", "add", "hub", "--url", fake.url))[0] == 0
        assert (await cli("registries", "add", "dst", "--url", registry2.url))[0] == 0
        code, _, err = await cli("tasks", "add", "t", "--source", "hub/library/*",
                                 "--target", "dst/mirror/*")
        assert code == 0, err
        code, _, err = await cli("plan", "t")
        assert code == 1 and "does not list its repositories" in err
        assert "list those repositories as separate rules" in err


async def test_schedule_preview_is_the_daemons(cli: Cli) -> None:
    """`regsyncctl schedule preview`: the daemon's fire times in UTC, its words for a mistake."""
    code, out, err = await cli("schedule", "preview", "@DAILY", "-n", "2")
    assert code == 0, err
    first, *times = out.splitlines()
    assert first == "@daily" and len(times) == 2
    assert all(line.endswith(" 00:00:00 UTC") for line in times)
    code, out, _ = await cli("-o", "json", "schedule", "preview", "30 4 * * 1")
    assert code == 0 and len(json.loads(out)["next_runs"]) == 5
    code, out, err = await cli("schedule", "preview", "61 2 * * *")
    assert code == 1 and "cron_expression: invalid cron expression '61 2 * * *'" in err
