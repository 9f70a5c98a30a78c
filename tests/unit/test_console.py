"""What `regsyncd once` prints: the status line, log lines and the summary."""

from __future__ import annotations

import io

from regsync.daemon.cli.console import LineSink, TerminalSink, summary
from regsync.daemon.engine.events import (
    BytesMoved,
    Counters,
    LogEvent,
    Outcome,
    TagFinished,
    TagResult,
    TagStarted,
)
from regsync.daemon.engine.report import RunReport


def test_the_status_line_counts_bytes_of_a_blob_still_moving() -> None:
    out = io.StringIO()
    sink = TerminalSink(out)
    counters = Counters(tags_total=1)
    sink(TagStarted("r", "1.0"), counters)
    sink._drawn = 0.0  # redraw now, whatever the clock says
    sink(BytesMoved(5_000_000), counters)  # no blob has finished: bytes_copied is still 0
    assert "tags 0/1  4.8 MiB" in out.getvalue() and "r:1.0" in out.getvalue()


def test_plain_lines_hide_skips_unless_verbose() -> None:
    out = io.StringIO()
    skipped = TagFinished(TagResult("r", "1.0", Outcome.SKIPPED, "sha256:a", "unchanged"))
    copied = TagFinished(TagResult("r", "1.1", Outcome.COPIED, "sha256:b"))
    LineSink(out)(skipped, Counters())
    LineSink(out)(copied, Counters())
    LineSink(out)(LogEvent("debug", "chatter"), Counters())
    assert out.getvalue() == "copied  [r] 1.1 sha256:b\n"
    LineSink(out, verbose=True)(skipped, Counters())
    assert out.getvalue().endswith("skipped [r] 1.0 sha256:a\n")


def test_summary_names_every_failure() -> None:
    report = RunReport(counters=Counters(tags_total=2, tags_copied=1, tags_failed=1))
    report.failures = [TagResult("r", "", Outcome.FAILED, reason="registry 'src': refused")]
    report.finished = report.started + 2
    text = summary(report)
    assert "1 copied, 0 skipped, 1 failed (of 2)" in text
    assert "[r] (rule): registry 'src': refused" in text


def test_summary_works_from_counters_and_the_failures_kept() -> None:
    """A run keeps its first failures, not every result: the summary counts the rest and names
    a glob's failures by repository and tag."""
    report = RunReport(counters=Counters(tags_total=5000, tags_skipped=4750, tags_failed=250),
                       invalid_names=2, repositories=1000)
    report.failures = [TagResult("g", "1.0", Outcome.FAILED, reason="gone", repository=f"a/r{i}")
                       for i in range(100)]
    report.finished = report.started + 1
    lines = summary(report).splitlines()
    assert "  [g] a/r0:1.0: gone" in lines and "  ... and 150 more (see the log)" in lines
    assert "repositories: 1000 matched by globs" in lines
    assert any(line.startswith("invalid: 2 listed names") for line in lines)


def test_summary_counts_referrers_on_their_own() -> None:
    report = RunReport(counters=Counters(referrers_copied=3))
    report.finished = report.started
    assert "referrers: 3 copied" in summary(report).splitlines()
