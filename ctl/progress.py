"""Live progress of one execution: a status line redrawn in place on a terminal, plain lines
otherwise (pipes, CI logs), and the final summary.

The line and the rate are pure functions of counters and clock readings; `ProgressView` only
decides when to write them. Tag results scroll above the status line; skipped tags are not
listed (they are the common case of a re-sync and are counted in the summary instead).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from regsync.common.text import escape_controls
from regsync.common.units import size
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .output import outcome_name, short_digest, status_name
from .views import blob_counts, tag_counts, took

_BAR = 20
_REDRAW_EVERY = 0.1  # seconds between redraws on a terminal
_PLAIN_EVERY = 10.0  # seconds between progress lines when not on a terminal
_CLEAR = "\r\x1b[2K"


class RateMeter:
    """Bytes per second over a sliding window, from (time, total bytes) readings."""

    def __init__(self, window: float = 5.0) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> None:
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return max(b1 - b0, 0) / (t1 - t0) if t1 > t0 else 0.0


def bar(done: int, total: int, width: int = _BAR) -> str:
    filled = min(width, done * width // total) if total > 0 else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_line(counters: ev.Counters, *, rate: float, current_tag: str) -> str:
    """`[#####---------------] 12/40 tags  1.2 GiB  34.5 MiB/s  nginx:1.25`"""
    c = counters
    done = c.tags_copied + c.tags_skipped + c.tags_failed
    failed = f" ({c.tags_failed} failed)" if c.tags_failed else ""
    total = max(c.tags_total, done)  # a failed listing counts a failure but no tag
    line = (f"{bar(done, total)} {done}/{total} tags{failed}  "
            f"{size(c.bytes_copied)}  {size(rate)}/s")
    return f"{line}  {escape_controls(current_tag)}" if current_tag else line


#: error kinds of a failed prune (errors.py: PruneStoppedError, DeleteRefusedError)
PRUNE_KINDS = frozenset({"prune-limit", "delete-refused"})


def tag_line(result: ev.TagResult) -> str:
    """One finished tag: `copied  1.25  sha256:0123456789ab`, or why it failed."""
    word = outcome_name(result.outcome)
    if result.outcome == ev.TAG_OUTCOME_FAILED:
        kind = f"[{result.error_kind}] " if result.error_kind else ""
        # no tag: the listing failed, or the prune after the copies (its kinds say so)
        whole = "(pruning the target)" if result.error_kind in PRUNE_KINDS else (
            "(listing the source tags)")
        what = escape_controls(result.tag) or whole
        reason = escape_controls(result.reason) or "no reason given"
        return f"{word:<7} {what}: {escape_controls(kind)}{reason}"
    note = f"  ({escape_controls(result.reason)})" if result.reason else ""
    digest = escape_controls(short_digest(result.digest))
    return f"{word:<7} {escape_controls(result.tag)}  {digest}{note}"


def summary(detail: pb.ExecutionDetail) -> str:
    """The closing lines: outcome, counts, bytes, and every failed tag with its reason."""
    e = detail.execution
    lines = [
        (f"execution {e.id} of task {escape_controls(e.task)} "
        f"{status_name(e.status).upper()} in {took(e)}: "
        f"{tag_counts(e.counters)}; {size(e.counters.bytes_copied)} copied "
        f"(blobs: {blob_counts(e.counters)}; referrers: {e.counters.referrers_copied} copied)")
        + (f"; {e.counters.tags_deleted} target tags pruned" if e.counters.tags_deleted else "")
    ]
    if e.error:
        lines.append(f"error: {escape_controls(e.error)}")
    lines += ["  " + tag_line(t) for t in detail.tags if t.outcome == ev.TAG_OUTCOME_FAILED]
    return "\n".join(lines)


class ProgressView:
    """Turns Watch events of one execution into output lines."""

    def __init__(
        self, out: TextIO, *, live: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._out = out
        self._live = live
        self._clock = clock
        self._counters = ev.Counters()
        self._current = ""
        self._rate = RateMeter()
        self._drawn_at: float | None = None
        self._status_shown = False

    def event(self, event: pb.WatchEvent) -> None:
        kind = event.WhichOneof("event")
        if event.current_tag:
            self._current = event.current_tag
        if kind == "progress":
            self._counters = event.progress
        elif kind == "execution":
            self._counters = event.execution.counters
        elif kind == "tag" and event.tag.outcome != ev.TAG_OUTCOME_SKIPPED:
            self._write_above(tag_line(event.tag))
        elif kind == "log" and event.log.level in ("warning", "error"):
            self._write_above(f"{escape_controls(event.log.level)}: "
                              f"{escape_controls(event.log.message)}")
        now = self._clock()
        self._rate.add(now, self._counters.bytes_copied)
        self._maybe_draw(now)

    def close(self) -> None:
        """Remove the status line so the summary starts on a clean line."""
        if self._live and self._status_shown:
            self._out.write(_CLEAR)
            self._out.flush()
            self._status_shown = False

    def _line(self) -> str:
        return progress_line(self._counters, rate=self._rate.rate(), current_tag=self._current)

    def _write_above(self, text: str) -> None:
        if self._live:
            self._out.write(_CLEAR + text + "\n" + (self._line() if self._status_shown else ""))
        else:
            self._out.write(text + "\n")
        self._out.flush()

    def _maybe_draw(self, now: float) -> None:
        every = _REDRAW_EVERY if self._live else _PLAIN_EVERY
        if self._drawn_at is not None and now - self._drawn_at < every:
            return
        self._drawn_at = now
        if self._live:
            self._out.write(_CLEAR + self._line())
            self._status_shown = True
        else:
            self._out.write(self._line() + "\n")
        self._out.flush()
