"""What `regsyncd once` and `check` print: a live status line on a terminal, plain lines otherwise.

No dependency: one redrawn line on a TTY is all a one-shot sync needs, and start-up stays lean
(a no-op re-sync is judged by how little it costs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from regsync.common.units import size

from ..base.safetext import escape_controls
from ..engine.events import BytesMoved, Counters, Event, LogEvent, Outcome, TagFinished, TagStarted
from ..engine.plan import TagPlan
from ..engine.prunerun import PrunePlan
from ..engine.report import RunReport

_REDRAW_EVERY = 0.1  # seconds


class LineSink:
    """Plain log lines, one per event that matters (for pipes, journald, CI logs)."""

    def __init__(self, out: TextIO | None = None, *, verbose: bool = False) -> None:
        self._out = out or sys.stderr  # looked up now: a default would bind import time's
        self._verbose = verbose

    def __call__(self, event: Event, counters: Counters) -> None:
        line = describe(event, verbose=self._verbose)
        if line:
            print(line, file=self._out, flush=True)


class TerminalSink(LineSink):
    """Log lines scroll above one status line that is redrawn in place."""

    def __init__(self, out: TextIO | None = None, *, verbose: bool = False) -> None:
        super().__init__(out, verbose=verbose)
        self._drawn = 0.0
        self._start = time.monotonic()
        self._current = ""
        self._moved = 0  # bytes sent so far, finished blobs or not: the rate of a big layer

    def __call__(self, event: Event, counters: Counters) -> None:
        if isinstance(event, TagStarted):
            self._current = f"{event.rule}:{event.tag}"
        elif isinstance(event, BytesMoved):
            self._moved += event.count
        line = describe(event, verbose=self._verbose)
        if line:
            self._out.write("\r\x1b[2K" + line + "\n")
            self._drawn = 0.0
        now = time.monotonic()
        if now - self._drawn >= _REDRAW_EVERY:
            self._drawn = now
            self._out.write("\r\x1b[2K" + self._status(counters, now))
            self._out.flush()

    def close(self) -> None:
        self._out.write("\r\x1b[2K")
        self._out.flush()

    def _status(self, c: Counters, now: float) -> str:
        elapsed = max(now - self._start, 1e-6)
        return (
            f"tags {c.tags_done}/{c.tags_total}  {size(self._moved)}  "
            f"{size(int(self._moved / elapsed))}/s  {self._current}"
        )


def describe(event: Event, *, verbose: bool) -> str:
    """One log line for an event, or "" for events only a status display shows."""
    if isinstance(event, LogEvent):
        if event.level == "debug" and not verbose:
            return ""
        where = f"[{escape_controls(event.rule)}] " if event.rule else ""
        return f"{event.level:<7} {where}{escape_controls(event.message)}"
    if isinstance(event, TagFinished):
        r = event.result
        if r.outcome is Outcome.FAILED:
            return ""  # the engine logs failures with their reason already
        if r.outcome is Outcome.SKIPPED and not verbose:
            return ""
        line = f"{r.outcome.value:<7} [{r.rule}] {r.key} {r.digest}".rstrip()
        return escape_controls(line)
    return ""


def summary(report: RunReport) -> str:
    c = report.counters
    seconds = report.duration
    rate = c.bytes_copied / seconds if seconds > 0 else 0.0
    lines = [
        (f"tags:  {c.tags_copied} copied, {c.tags_skipped} skipped, {c.tags_failed} failed"
         f" (of {c.tags_total})"),
        f"blobs: {c.blobs_copied} copied, {c.blobs_mounted} mounted, {c.blobs_skipped} present",
        f"bytes: {size(c.bytes_copied)} in {seconds:.1f}s ({size(int(rate))}/s)",
        f"referrers: {report.referrers_copied} copied",
    ]
    if c.tags_deleted:
        lines.append(f"pruned: {c.tags_deleted} target tags deleted")
    if report.repositories:
        lines.append(f"repositories: {report.repositories} matched by globs")
    if report.invalid_names:
        lines.append(f"invalid: {report.invalid_names} listed names are not valid tags, skipped"
                     " (see the log)")
    if report.failures:
        lines.append("failed:")
        lines += [f"  [{r.rule}] {r.key or '(rule)'}: {r.reason}" for r in report.failures]
        if c.tags_failed > len(report.failures):
            lines.append(f"  ... and {c.tags_failed - len(report.failures)} more (see the log)")
    return escape_controls("\n".join(lines), keep_newlines=True)


def plan_table(rule: str, plans: Sequence[TagPlan], dropped: Sequence[tuple[str, str]],
               prune: PrunePlan | None = None) -> str:
    lines = [f"rule {rule}:"]
    lines += [f"  {p.action:<5} {p.tag:<30} {p.reason}" for p in plans]
    lines += [f"  {'drop':<5} {tag:<30} {why}" for tag, why in dropped]
    if not plans and not dropped:
        lines.append("  (no tags at the source)")
    if prune is not None:
        lines += prune_lines(prune)
    return escape_controls("\n".join(lines), keep_newlines=True)


def prune_lines(prune: PrunePlan) -> list[str]:
    """A plan's deletions, after its copies: target tags, each with its digest and why."""
    lines = [f"  prune: {len(prune.deletions)} target tags to delete after the copies"]
    for d in prune.deletions:
        blocked = prune.blocked.get(d.tag)
        note = f"; deleting by digest only: {blocked}" if blocked else ""
        lines.append(f"  {'prune':<5} {d.tag:<30} {d.digest} ({d.reason}{note})")
    lines += [f"  note: {note}" for note in prune.notes]
    return lines
