"""The panel's pure parts: formatting, forms <-> messages, error wording, addresses."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from regsync.common.units import size
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.ui import format as fmt
from regsync.ui.__main__ import parse
from regsync.ui.client import explain
from regsync.ui.forms import RegistryForm, TaskForm, registry_form, split_list, task_form
from regsync.ui.server import dial_address


def test_durations_sizes_and_progress() -> None:
    assert [fmt.duration(s) for s in (None, 0.25, 12.34, 245, 7380)] == [
        "-", "250 ms", "12.3 s", "4 min 05 s", "2 h 03 min"]
    assert [size(n) for n in (0, 1536, 3 * 1024**3)] == ["0 B", "1.5 KiB", "3.0 GiB"]
    counters = ev.Counters(tags_total=4, tags_copied=1, tags_skipped=1)
    assert fmt.progress(counters) == 0.5 and fmt.progress(ev.Counters()) == 0.0
    assert fmt.tally(counters) == "2/4 tags: 1 copied, 1 unchanged, 0 failed"
    unlisted = ev.Counters(tags_failed=1)  # the rule's tags could not be listed
    assert fmt.tally(unlisted) == "1/1 tags: 0 copied, 0 unchanged, 1 failed"
    assert fmt.progress(unlisted) == 1.0
    assert fmt.status_label(pb.EXECUTION_STATUS_FAILED) == "failed"


def test_cron_preview_shows_the_daemons_times_in_utc() -> None:
    """The wizard computed the preview itself in the browser's local time; it shows the
    daemon's PreviewSchedule answer now, each time labelled UTC, whatever the local zone."""
    reply = pb.PreviewScheduleResponse(cron_expression="0 2 * * *")
    for day in (2, 3):
        reply.next_runs.add().FromDatetime(datetime(2026, 1, day, 2, 0, tzinfo=UTC))
    preview = fmt.cron_preview(reply)
    assert preview.times == ("2026-01-02 02:00:00 UTC", "2026-01-03 02:00:00 UTC")
    assert not preview.error
    assert "manual" in fmt.cron_preview(pb.PreviewScheduleResponse()).error


def test_registry_password_is_write_only() -> None:
    assert not RegistryForm(name="a").to_spec().HasField("password")  # keep
    assert RegistryForm(name="a", password="p").to_spec().password == "p"
    cleared = RegistryForm(name="a", password="p", clear_password=True).to_spec()
    assert cleared.HasField("password") and cleared.password == ""
    assert "p4ss" not in repr(RegistryForm(password="p4ss"))
    form = registry_form(pb.Registry(name="a", url="u", password_set=True, qps=2))
    assert form.password == "" and form.qps == 2


def test_task_form_round_trip_and_preview_spec() -> None:
    form = TaskForm(name="t", source_registry="s", source_repository=" lib/x ",
                    target_registry="d", target_repository="m/x", include="^1\\.,\n^2",
                    latest=3, platforms="linux/amd64, linux/arm/v7", cron="0  2 * * *")
    spec = form.to_spec()
    assert spec.source.repository == "lib/x" and list(spec.tags.include) == ["^1\\.", "^2"]
    assert list(spec.platforms) == ["linux/amd64", "linux/arm/v7"]
    assert spec.cron_expression == "0 2 * * *"
    assert task_form(pb.Task(spec=spec)).to_spec() == spec
    # what the wizard does not edit survives an edit (a glob's excludes, referrers: false)
    stored = pb.TaskSpec(name="g", source=pb.Endpoint(registry="s", repository="team/**",
                                                      exclude=["team/old"]),
                         target=pb.Endpoint(registry="d", repository="dr/**"),
                         tags=pb.TagFilter(), enabled=True, referrers=False)
    assert task_form(pb.Task(spec=stored)).to_spec() == stored
    sboms = pb.TaskSpec(name="s", source=pb.Endpoint(registry="s", repository="x"),
                        target=pb.Endpoint(registry="d", repository="x"), tags=pb.TagFilter(),
                        referrers=True, referrer_artifact_types=["application/spdx+json", "a/b"])
    assert task_form(pb.Task(spec=sboms)).to_spec() == sboms
    half = TaskForm(source_registry="s", source_repository="lib/x").preview_spec()
    assert half.name and half.target.registry == "s" and half.target != half.source
    assert split_list(" a,,b \n c ") == ("a", "b", "c")


@pytest.mark.parametrize(("code", "words", "login"), [
    (grpc.StatusCode.UNAVAILABLE, "Cannot reach regsyncd at h:1", False),
    (grpc.StatusCode.UNAUTHENTICATED, "requires an API token", True),
    (grpc.StatusCode.NOT_FOUND, "no task named 'x'", False),
    (grpc.StatusCode.INTERNAL, "failed: no task named 'x'", False),
])
def test_errors_read_as_sentences(code: grpc.StatusCode, words: str, login: bool) -> None:
    error = explain(code, "no task named 'x'\n  File trace", address="h:1", token_sent=False)
    assert words in error.message and error.needs_login is login
    assert "trace" not in error.message


def test_panel_listens_on_loopback_unless_asked_and_dials_where_the_api_is() -> None:
    assert parse(["--server", "10.0.0.5:50051"]).host == "127.0.0.1"
    assert parse(["--host", "0.0.0.0"]).host == "0.0.0.0"
    assert dial_address("0.0.0.0:50051") == "127.0.0.1:50051"
    assert dial_address("[::]:5") == "[::1]:5" and dial_address("[::1]:5") == "[::1]:5"
    assert dial_address("unix:/run/x") == "unix:/run/x"


def test_history_links_quote_task_names() -> None:
    from regsync.ui.pages.executions import executions_url

    assert executions_url("a&b #2") == "/executions?task=a%26b+%232"
