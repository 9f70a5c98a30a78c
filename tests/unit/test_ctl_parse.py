"""regsyncctl's command line: the tree, global options anywhere, usage errors, and the specs
built from flags (add from scratch, edit changing only what was given)."""

from __future__ import annotations

import argparse
import io

import pytest
from regsync.ctl import specs
from regsync.ctl.client import EXIT_OK, EXIT_USAGE
from regsync.ctl.main import main
from regsync.ctl.parser import UsageError, build
from regsync.proto.regsync.v1 import regsync_pb2 as pb


def parse(*argv: str) -> argparse.Namespace:
    return build().parse_args(list(argv))


def test_global_options_before_or_after_the_command() -> None:
    early = parse("--server", "unix:/run/r.sock", "-o", "json", "tasks", "list")
    late = parse("tasks", "list", "--server", "unix:/run/r.sock", "-o", "json")
    assert (early.server, early.output) == (late.server, late.output) == ("unix:/run/r.sock",
                                                                         "json")


def test_a_late_global_overrides_an_early_one_and_absent_ones_keep_defaults() -> None:
    args = parse("-o", "json", "--timeout", "5", "status", "-o", "table")
    assert args.output == "table"
    assert args.timeout == 5.0
    assert args.server is None and args.token is None and args.tls is False


def test_server_ca_file_is_distinct_from_the_registry_ca_file() -> None:
    args = parse("--ca-file", "daemon.pem", "registries", "add", "r", "--url", "https://r",
                 "--ca-file", "registry.pem")
    assert args.server_ca_file == "daemon.pem"
    assert args.ca_file == "registry.pem"


def test_run_follow_is_tri_state() -> None:
    assert parse("run", "t").follow is None
    assert parse("run", "t", "--follow").follow is True
    assert parse("run", "t", "--no-follow").follow is False


@pytest.mark.parametrize("argv", [
    ["run"],
    ["tasks"],
    ["tasks", "add", "t", "--source", "nosalsh", "--target", "a/b"],
    ["tasks", "add", "t", "--source", "a/b"],
    ["tasks", "add", "t", "--source", "a/b", "--target", "a/c", "--latest", "-1"],
    ["registries", "add", "r"],
    ["registries", "add", "r", "--url", "https://x", "--qps", "fast"],
    ["executions", "list", "--status", "exploded"],
    ["-o", "yaml", "status"],
    ["completion", "fish"],
    ["frobnicate"],
])
def test_usage_errors_raise_instead_of_exiting(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        build().parse_args(argv)


def test_main_reports_usage_errors_with_exit_64_and_never_dials() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--server", "127.0.0.1:1", "tasks", "add", "t", "--source", "x"],
                stdout=out, stderr=err, environ={})
    assert code == EXIT_USAGE
    assert "regsyncctl: error:" in err.getvalue()
    assert "REGISTRY/REPOSITORY" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert out.getvalue() == ""


def test_help_goes_to_the_given_stdout_and_documents_exit_codes() -> None:
    out = io.StringIO()
    assert main(["--help"], stdout=out, stderr=io.StringIO(), environ={}) == EXIT_OK
    text = out.getvalue()
    for line in ("exit codes:", "2    cannot reach regsyncd", "130  interrupted",
                 "REGSYNC_SERVER", "REGSYNC_API_TOKEN"):
        assert line in text


def test_unreadable_token_file_is_a_usage_error(tmp_path: pytest.TempPathFactory) -> None:
    err = io.StringIO()
    code = main(["--token-file", "/nonexistent/token", "status"], stdout=io.StringIO(),
                stderr=err, environ={})
    assert code == EXIT_USAGE
    assert "--token-file /nonexistent/token" in err.getvalue()


@pytest.mark.parametrize(("text", "registry", "repository"), [
    ("dockerhub/library/nginx", "dockerhub", "library/nginx"),
    ("local/nginx", "local", "nginx"),
    ("mirror/a/b/c/", "mirror", "a/b/c"),
])
def test_endpoint_splits_at_the_first_slash(text: str, registry: str, repository: str) -> None:
    assert specs.endpoint(text) == pb.Endpoint(registry=registry, repository=repository)


@pytest.mark.parametrize("text", ["nginx", "/library/nginx", "hub/", "hub//"])
def test_endpoint_rejects_a_missing_side(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="REGISTRY/REPOSITORY"):
        specs.endpoint(text)


def test_status_words() -> None:
    assert specs.status("failed") == pb.EXECUTION_STATUS_FAILED
    assert specs.status("RUNNING") == pb.EXECUTION_STATUS_RUNNING
    with pytest.raises(argparse.ArgumentTypeError, match="one of: queued"):
        specs.status("unspecified_typo")


def test_new_task_from_flags() -> None:
    args = parse("tasks", "add", "nginx", "--source", "hub/library/nginx", "--target",
                 "local/nginx", "--include", "^1\\.2", "--include", "^stable$",
                 "--exclude=-alpine", "--semver", ">=1.20 <2", "--latest", "3", "--arch", "amd64",
                 "--platform", "linux/arm/v7", "--cron", "0 2 * * *", "--disabled")
    spec = specs.new_task(args)
    assert spec == pb.TaskSpec(
        name="nginx",
        source=pb.Endpoint(registry="hub", repository="library/nginx"),
        target=pb.Endpoint(registry="local", repository="nginx"),
        tags=pb.TagFilter(include=["^1\\.2", "^stable$"], exclude=["-alpine"],
                          semver=">=1.20 <2", latest=3),
        architectures=["amd64"], platforms=["linux/arm/v7"], enabled=False,
        cron_expression="0 2 * * *",
    )


def test_new_task_defaults_enabled_with_no_filters() -> None:
    spec = specs.new_task(parse("tasks", "add", "t", "--source", "a/x", "--target", "b/x"))
    assert spec.enabled is True
    assert spec.HasField("tags") and list(spec.tags.include) == []
    assert spec.cron_expression == ""


CURRENT_TASK = pb.TaskSpec(
    name="t", source=pb.Endpoint(registry="a", repository="x"),
    target=pb.Endpoint(registry="b", repository="x"),
    tags=pb.TagFilter(include=["^1"], exclude=["rc"], semver=">=1", latest=5),
    architectures=["amd64", "arm64"], platforms=["linux/amd64"], enabled=False,
    cron_expression="0 2 * * *",
)


def test_edit_task_without_flags_changes_nothing() -> None:
    assert specs.edited_task(CURRENT_TASK, parse("tasks", "edit", "t")) == CURRENT_TASK


def test_edit_task_replaces_given_lists_and_scalars_only() -> None:
    args = parse("tasks", "edit", "t", "--include", "^2", "--latest", "0", "--target", "c/y")
    spec = specs.edited_task(CURRENT_TASK, args)
    assert list(spec.tags.include) == ["^2"]
    assert list(spec.tags.exclude) == ["rc"]
    assert spec.tags.latest == 0
    assert spec.target == pb.Endpoint(registry="c", repository="y")
    assert spec.source == CURRENT_TASK.source
    assert list(spec.architectures) == ["amd64", "arm64"]
    assert spec.enabled is False and spec.cron_expression == "0 2 * * *"
    assert list(CURRENT_TASK.tags.include) == ["^1"]  # the input is not modified


def test_edit_task_clear_then_set() -> None:
    args = parse("tasks", "edit", "t", "--clear", "arch", "--clear", "cron", "--clear",
                 "exclude", "--clear", "semver", "--exclude", "beta")
    spec = specs.edited_task(CURRENT_TASK, args)
    assert list(spec.architectures) == []
    assert spec.cron_expression == ""
    assert spec.tags.semver == ""
    assert list(spec.tags.exclude) == ["beta"]
    assert list(spec.platforms) == ["linux/amd64"]


def test_new_registry_sends_a_password_only_when_one_was_read() -> None:
    args = parse("registries", "add", "hub", "--url", "https://r", "--username", "u",
                 "--insecure", "--qps", "2.5")
    without = specs.new_registry(args, None)
    assert not without.HasField("password")
    assert (without.username, without.insecure, without.qps) == ("u", True, 2.5)
    assert specs.new_registry(args, "pw").password == "pw"


def test_edit_registry_keeps_unmentioned_settings_and_the_password() -> None:
    current = pb.Registry(name="hub", url="https://r", username="u", password_set=True,
                          insecure=True, ca_file="/ca.pem", qps=3, used_by=["t"])
    spec = specs.edited_registry(current, parse("registries", "edit", "hub", "--no-insecure"),
                                 None)
    assert spec == pb.RegistrySpec(name="hub", url="https://r", username="u", insecure=False,
                                   ca_file="/ca.pem", qps=3)
    assert not spec.HasField("password")
    spec = specs.edited_registry(current, parse("registries", "edit", "hub", "--username", "",
                                                "--qps", "0"), "")
    assert (spec.username, spec.qps, spec.insecure) == ("", 0, True)
    assert spec.HasField("password") and spec.password == ""


def test_prune_flags() -> None:
    args = parse("tasks", "add", "t", "--source", "a/b", "--target", "a/c", "--prune",
                 "--prune-max", "25%")
    spec = specs.new_task(args)
    assert (spec.prune, spec.prune_max) == (True, "25%")
    assert specs.new_task(parse("tasks", "add", "t", "--source", "a/b", "--target", "a/c")
                          ).prune is False
    pruning = specs.edited_task(CURRENT_TASK, parse("tasks", "edit", "t", "--prune",
                                                    "--prune-max", "10"))
    assert (pruning.prune, pruning.prune_max) == (True, "10")
    assert specs.edited_task(pruning, parse("tasks", "edit", "t")) == pruning  # kept unsaid
    assert specs.edited_task(pruning, parse("tasks", "edit", "t", "--no-prune")).prune is False
    assert parse("run", "t", "--force-prune").force_prune is True
    assert parse("run", "t").force_prune is False


@pytest.mark.parametrize("value", ["101%", "-3", "half", "1.5", ""])
def test_a_bad_prune_max_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        parse("tasks", "edit", "t", "--prune-max", value)


def test_task_referrers_flags() -> None:
    spec = specs.new_task(parse("tasks", "add", "t", "--source", "a/x", "--target", "b/x",
                                "--artifact-type", "application/spdx+json"))
    assert list(spec.referrer_artifact_types) == ["application/spdx+json"]
    assert not spec.HasField("referrers")  # unset: the daemon's default, on
    off = specs.edited_task(spec, parse("tasks", "edit", "t", "--no-referrers"))
    assert off.HasField("referrers") and off.referrers is False
    assert list(off.referrer_artifact_types) == ["application/spdx+json"]
    cleared = specs.edited_task(off, parse("tasks", "edit", "t", "--referrers", "--clear",
                                           "artifact-type"))
    assert cleared.referrers is True and list(cleared.referrer_artifact_types) == []
