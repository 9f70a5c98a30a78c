"""Tasks page, the wizard (preview, cron helper), executions and one execution's page."""

from __future__ import annotations

import pytest
from fake_daemon import FakeDaemon, eventually, finish_execution, start_execution
from nicegui import ui
from nicegui.testing import User
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

pytestmark = pytest.mark.asyncio


def _two_registries(fake: FakeDaemon) -> None:
    fake.add_registry("src")
    fake.add_registry("dst")


async def test_task_actions(user: User, fake_daemon: FakeDaemon) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("nginx")
    await user.open("/tasks")
    await user.should_see("0 2 * * *")
    user.find(marker="run-nginx").click()
    await user.should_see("Task nginx started")
    await user.should_see(marker="stop-nginx")  # the row now offers Stop
    user.find(marker="stop-nginx").click()
    await user.should_see("Task nginx stopping")
    user.find(marker="enabled-nginx").click()
    await eventually(lambda: not fake_daemon.state.tasks["nginx"].spec.enabled)
    user.find(marker="delete-nginx").click()
    user.find(marker="confirm").click()
    await user.should_see("Task nginx deleted")
    assert "nginx" not in fake_daemon.state.tasks


async def test_run_refusal_is_explained(user: User, fake_daemon: FakeDaemon) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("nginx")
    await user.open("/tasks")
    await user.should_see(marker="run-nginx")
    start_execution(fake_daemon.state, "nginx")  # started elsewhere meanwhile
    user.find(marker="run-nginx").click()
    await user.should_see("task 'nginx' is already running")


async def test_wizard_previews_tags_and_creates_the_task(user: User,
                                                        fake_daemon: FakeDaemon) -> None:
    _two_registries(fake_daemon)
    fake_daemon.state.source_tags[("src", "library/nginx")] = [
        "1.25", "1.26", "1.27", "1.27-alpine", "latest"]
    await user.open("/tasks/new")
    await user.should_see(marker="task-name")
    user.find(marker="task-name").type("nginx")
    user.find(marker="source-registry").click()
    user.find("src").click()
    user.find(marker="source-repository").type("library/nginx")
    user.find(marker="target-registry").click()
    user.find("dst").click()
    user.find(marker="target-repository").type("mirror/nginx")
    user.find(marker="exclude").type("alpine")
    await user.should_see("4 of 5 tags kept", retries=30)
    user.find(marker="latest").type("2")
    await user.should_see("2 of 5 tags kept", retries=30)
    previews = fake_daemon.calls("PreviewTags")
    assert not previews[0].tags, "the first preview lists the source"
    assert sorted(previews[-1].tags) == sorted(
        fake_daemon.state.source_tags[("src", "library/nginx")]), "later ones send the list"
    user.find(marker="cron").type("30 4 * * 1")
    await user.should_see("Next runs (UTC", retries=30)
    with user:
        labels = [e.text for e in ui.context.client.elements.values()
                  if isinstance(e, ui.label) and e.text.endswith(":30:00 UTC")]
    # the daemon's answer (fake_daemon.FAKE_NOW is Thursday 2026-01-01), in UTC: five Mondays
    assert labels == [f"2026-01-{day:02d} 04:30:00 UTC" for day in (5, 12, 19, 26)] + [
        "2026-02-02 04:30:00 UTC"]
    assert fake_daemon.calls("PreviewSchedule")[-1].cron_expression == "30 4 * * 1"
    user.find(marker="artifact-types").type("application/spdx+json")
    user.find(marker="save-task").click()
    await user.should_see("Task nginx saved")
    spec = fake_daemon.calls("CreateTask")[-1]
    assert list(spec.referrer_artifact_types) == ["application/spdx+json"] and spec.referrers
    assert (spec.source.registry, spec.source.repository) == ("src", "library/nginx")
    assert (spec.target.registry, spec.target.repository) == ("dst", "mirror/nginx")
    assert list(spec.tags.exclude) == ["alpine"] and spec.tags.latest == 2
    assert spec.cron_expression == "30 4 * * 1" and spec.enabled


async def test_wizard_shows_bad_input_inline(user: User, fake_daemon: FakeDaemon) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("nginx")
    await user.open("/tasks/edit?name=nginx")
    await user.should_see(marker="include")
    user.find(marker="include").type("(")
    await user.should_see("bad regex", retries=30)
    user.find(marker="cron").clear().type("61 * * *")
    await user.should_see("cron_expression: '61 * * *' has 4 fields; expected 5", retries=30)
    user.find(marker="cron").clear().type("@daily")  # the browser's own preview refused it
    await user.should_see("2026-01-02 00:00:00 UTC", retries=30)
    user.find(marker="save-task").click()
    await eventually(lambda: bool(fake_daemon.calls("UpdateTask")))
    assert fake_daemon.calls("UpdateTask")[-1].name == "nginx"


async def test_a_task_named_with_a_slash_opens_in_the_wizard(
    user: User, fake_daemon: FakeDaemon
) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("team/app")
    await user.open("/tasks")
    await user.should_see("team/app")
    user.find("Edit").click()
    await user.should_see(marker="include")
    user.find(marker="save-task").click()
    await eventually(lambda: bool(fake_daemon.calls("UpdateTask")))
    assert fake_daemon.calls("UpdateTask")[-1].name == "team/app"


async def test_an_execution_page_says_which_daemon_runs_it(
    user: User, fake_daemon: FakeDaemon,
) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("nginx")
    run = start_execution(fake_daemon.state, "nginx", daemon="host-2 pid 7 (#2)")
    await user.open(f"/executions/{run.id}")
    await user.should_see("daemon host-2 pid 7 (#2)")


async def test_executions_filter_and_detail(user: User, fake_daemon: FakeDaemon) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("nginx")
    fake_daemon.add_task("redis")
    first = start_execution(fake_daemon.state, "nginx")
    failed = (ev.TagResult(tag="1.0", outcome=ev.TAG_OUTCOME_COPIED, digest="sha256:aa"),
              ev.TagResult(tag="2.0", outcome=ev.TAG_OUTCOME_FAILED, reason="blob unknown"))
    finish_execution(fake_daemon.state, first.id, pb.EXECUTION_STATUS_FAILED, failed)
    fake_daemon.state.executions[first.id].execution.counters.referrers_copied = 3
    other = start_execution(fake_daemon.state, "redis")
    await user.open("/executions")
    await user.should_see(marker=f"execution-{other.id}")
    user.find(marker="filter-status").click()
    user.find("failed").click()
    await user.should_not_see(marker=f"execution-{other.id}", retries=20)
    await user.should_see(marker=f"execution-{first.id}")

    await user.open(f"/executions/{first.id}")
    await user.should_see("blob unknown")
    await user.should_see("referrers: 3 copied", retries=20)
    await user.should_see(f"execution {first.id} started")  # the stored log
    fake_daemon.log(first.id, "a line that arrives live")
    await user.should_see("a line that arrives live", retries=40)
    user.find("Retry failed tags").click()
    await user.should_see(f"Retrying the failed tags as execution #{first.id + 2}")
    assert fake_daemon.calls("RetryFailed")[-1].id == first.id


async def test_wizard_previews_the_repositories_a_glob_matches(user: User,
                                                              fake_daemon: FakeDaemon) -> None:
    """Before saving: each matched repository, its target and tag counts; bounded, and it says
    when more match."""
    _two_registries(fake_daemon)
    names = ["other/x", "team-a/api", "team-a/web"] + [f"team-a/z{n:02}" for n in range(50)]
    fake_daemon.state.catalogs["src"] = names
    fake_daemon.state.source_tags[("src", "team-a/web")] = ["1.0", "1.1", "1.1-alpine"]
    await user.open("/tasks/new")
    await user.should_see(marker="task-name")
    user.find(marker="task-name").type("team")
    user.find(marker="source-registry").click()
    user.find("src").click()
    user.find(marker="source-repository").type("team-a/*")
    user.find(marker="target-registry").click()
    user.find("dst").click()
    user.find(marker="target-repository").type("dr/*")
    user.find(marker="exclude").type("alpine")
    await user.should_see("50 repositories match (the first 50; more match", retries=30)
    await user.should_see("-> dr/web", retries=30)
    await user.should_see("2 of 3 tags kept", retries=30)
    await user.should_not_see("other/x")
    request = fake_daemon.calls("PreviewRepositories")[-1]
    assert request.limit == 50 and request.spec.source.repository == "team-a/*"
    assert not fake_daemon.calls("PreviewTags"), "a glob is not previewed as one repository"


async def test_a_glob_execution_groups_by_repository_and_shows_new_and_removed(
    user: User, fake_daemon: FakeDaemon
) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("team")
    run = start_execution(fake_daemon.state, "team")
    finish_execution(fake_daemon.state, run.id, pb.EXECUTION_STATUS_SUCCEEDED, (
        ev.TagResult(repository="team-a/web", tag="1.0", outcome=ev.TAG_OUTCOME_SKIPPED),
        ev.TagResult(repository="team-a/new", tag="2.0", outcome=ev.TAG_OUTCOME_COPIED),
        ev.TagResult(repository="team-a/web", tag="1.1", outcome=ev.TAG_OUTCOME_SKIPPED)))
    detail = fake_daemon.state.executions[run.id]
    detail.execution.repositories.CopyFrom(pb.RepositoryScope(matched=2, added=1, removed=1))
    detail.new_repositories.append("team-a/new")
    detail.removed_repositories.append("team-a/gone")
    await user.open(f"/executions/{run.id}")
    await user.should_see("Repositories: 2 matched, 1 new, 1 removed")
    await user.should_see(marker="scope-removed")
    with user:
        grid = user.find(marker="tags-by-repository").elements.pop()
        texts = [e.text for e in grid.descendants() if isinstance(e, ui.label | ui.badge)]
    assert texts.index("team-a/new") < texts.index("team-a/web")
    assert texts[texts.index("team-a/new") + 1] == "new"  # its badge
    assert texts.count("team-a/web") == 1  # a group names its repository once
    removed = user.find(marker="scope-removed").elements.pop()
    assert [c.text for c in removed.descendants() if isinstance(c, ui.chip)] == ["team-a/gone"]


async def test_the_wizard_turns_pruning_on_with_its_warning_and_keeps_hidden_fields(
    user: User, fake_daemon: FakeDaemon
) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("nginx")
    stored = fake_daemon.state.tasks["nginx"].spec
    stored.referrers = False  # not shown by the wizard: an edit must keep it
    await user.open("/tasks/edit?name=nginx")
    await user.should_see(marker="prune")
    await user.should_not_see(marker="prune-warning")
    user.find(marker="prune").click()
    await user.should_see("tags anyone else pushed there are deleted too")
    user.find(marker="prune-max").type("10")
    user.find(marker="save-task").click()
    await eventually(lambda: bool(fake_daemon.calls("UpdateTask")))
    spec = fake_daemon.calls("UpdateTask")[-1]
    assert (spec.prune, spec.prune_max, spec.referrers) == (True, "10", False)


async def test_the_execution_page_shows_pruned_tags(user: User, fake_daemon: FakeDaemon) -> None:
    _two_registries(fake_daemon)
    fake_daemon.add_task("nginx")
    run = start_execution(fake_daemon.state, "nginx")
    pruned = ev.TagResult(tag="1.19", outcome=ev.TAG_OUTCOME_DELETED, digest="sha256:dd",
                          reason="pruned: not in the rule's selection")
    finish_execution(fake_daemon.state, run.id, pb.EXECUTION_STATUS_SUCCEEDED, (pruned,))
    fake_daemon.state.executions[run.id].execution.counters.tags_deleted = 1
    await user.open(f"/executions/{run.id}")
    await user.should_see("deleted")
    await user.should_see("sha256:dd (pruned: not in the rule's selection)")
    await user.should_see("1 target tags pruned")
