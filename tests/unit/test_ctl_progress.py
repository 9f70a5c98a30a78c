"""Live progress: the rate, the status line, tag lines, the summary, and when lines are drawn."""

from __future__ import annotations

import io

from regsync.ctl.progress import ProgressView, RateMeter, bar, progress_line, summary, tag_line
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

MiB = 1024**2


def test_rate_over_a_sliding_window() -> None:
    meter = RateMeter(window=5.0)
    assert meter.rate() == 0.0
    meter.add(0.0, 0)
    meter.add(1.0, 10 * MiB)
    assert meter.rate() == 10 * MiB
    for second in range(2, 21):  # a stall: the rate falls to 0 once the window moves past it
        meter.add(float(second), 10 * MiB)
    assert meter.rate() == 0.0
    meter.add(21.0, 15 * MiB)
    assert 0.8 * MiB < meter.rate() < 1.2 * MiB  # 5 MiB over the last ~5 s


def test_bar() -> None:
    assert bar(0, 0, width=4) == "[----]"
    assert bar(1, 2, width=4) == "[##--]"
    assert bar(9, 4, width=4) == "[####]"


def test_progress_line() -> None:
    counters = ev.Counters(tags_total=40, tags_copied=8, tags_skipped=3, tags_failed=1,
                           bytes_copied=int(1.5 * 1024**3))
    line = progress_line(counters, rate=34.5 * MiB, current_tag="nginx:1.25")
    assert line == ("[######--------------] 12/40 tags (1 failed)  1.5 GiB  34.5 MiB/s  "
                    "nginx:1.25")
    assert progress_line(ev.Counters(), rate=0, current_tag="") == (
        "[--------------------] 0/0 tags  0 B  0 B/s")


def test_tag_lines() -> None:
    copied = ev.TagResult(tag="1.25", outcome=ev.TAG_OUTCOME_COPIED, digest="sha256:" + "a" * 64,
                          reason="index rewritten: platforms dropped")
    assert tag_line(copied) == ("copied  1.25  sha256:aaaaaaaaaaaa  "
                                "(index rewritten: platforms dropped)")
    failed = ev.TagResult(tag="1.26", outcome=ev.TAG_OUTCOME_FAILED, reason="429 after retries",
                          error_kind="rate-limit")
    assert tag_line(failed) == "failed  1.26: [rate-limit] 429 after retries"
    listing = ev.TagResult(outcome=ev.TAG_OUTCOME_FAILED, reason="connection refused")
    assert tag_line(listing) == "failed  (listing the source tags): connection refused"
    stopped = ev.TagResult(outcome=ev.TAG_OUTCOME_FAILED, reason="prune stopped: ...",
                           error_kind="prune-limit")
    assert tag_line(stopped) == "failed  (pruning the target): [prune-limit] prune stopped: ..."
    pruned = ev.TagResult(tag="1.19", outcome=ev.TAG_OUTCOME_DELETED, digest="sha256:" + "b" * 64,
                          reason="pruned: not in the rule's selection")
    assert tag_line(pruned) == ("deleted 1.19  sha256:bbbbbbbbbbbb  "
                                "(pruned: not in the rule's selection)")
    assert progress_line(ev.Counters(tags_failed=1), rate=0, current_tag="").startswith(
        "[####################] 1/1 tags (1 failed)")


def test_summary_names_the_outcome_and_each_failed_tag() -> None:
    detail = pb.ExecutionDetail(
        execution=pb.Execution(id=4, task="nginx", status=pb.EXECUTION_STATUS_FAILED,
                               error="1 tag failed",
                               counters=ev.Counters(tags_total=2, tags_copied=1, tags_failed=1,
                                                    referrers_copied=3)),
        tags=[ev.TagResult(tag="a", outcome=ev.TAG_OUTCOME_COPIED),
              ev.TagResult(tag="b", outcome=ev.TAG_OUTCOME_FAILED, reason="boom")],
    )
    lines = summary(detail).splitlines()
    assert lines[0].startswith("execution 4 of task nginx FAILED in -: 2/2 (1 copied, 0 skipped,"
                               " 1 failed); 0 B copied")
    assert lines[0].endswith("present; referrers: 3 copied)")
    assert lines[1:] == ["error: 1 tag failed", "  failed  b: boom"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress(copied: int, total: int = 10) -> pb.WatchEvent:
    return pb.WatchEvent(execution_id=1, progress=ev.Counters(tags_total=total,
                                                              tags_copied=copied))


def tag(name: str, outcome: ev.TagOutcome.ValueType) -> pb.WatchEvent:
    return pb.WatchEvent(execution_id=1, tag=ev.TagResult(tag=name, outcome=outcome))


def test_plain_mode_prints_lines_only_and_throttles_progress() -> None:
    out, clock = io.StringIO(), Clock()
    view = ProgressView(out, live=False, clock=clock)
    view.event(progress(1))
    clock.now = 1.0
    view.event(progress(2))  # within 10 s: not printed
    view.event(tag("skipped-one", ev.TAG_OUTCOME_SKIPPED))  # skipped tags are not listed
    view.event(tag("1.25", ev.TAG_OUTCOME_COPIED))
    clock.now = 11.0
    view.event(progress(3))
    view.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("[")] == ["1/10", "3/10"]
    assert "copied  1.25  -" in lines
    assert "skipped-one" not in text


def test_live_mode_redraws_in_place_and_keeps_tag_lines_above() -> None:
    out, clock = io.StringIO(), Clock()
    view = ProgressView(out, live=True, clock=clock)
    view.event(pb.WatchEvent(execution_id=1, current_tag="nginx:1.25", progress=ev.Counters(
        tags_total=2)))
    clock.now = 0.05
    view.event(progress(1, total=2))  # within 0.1 s of the last redraw: not redrawn
    view.event(tag("1.25", ev.TAG_OUTCOME_FAILED))
    clock.now = 0.5
    view.event(progress(2, total=2))
    view.close()
    text = out.getvalue()
    redraws = [part for part in text.split("\r\x1b[2K") if part]
    assert redraws[0] == "[--------------------] 0/2 tags  0 B  0 B/s  nginx:1.25"
    # the tag line scrolls above; the status line is drawn again after it, up to date
    assert redraws[1].startswith("failed  1.25: no reason given\n[##########----------] 1/2")
    assert redraws[2].startswith("[####################] 2/2 tags")
    assert text.endswith("\r\x1b[2K")  # close() wipes the status line for the summary
