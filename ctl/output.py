"""Plain-text building blocks: aligned tables, key/value blocks, sizes, durations, times, enums.

Pure functions of their arguments (the time zone is a parameter), so rendering is tested
without a terminal or a daemon. Tables have no borders and no colour: they survive `grep`,
`less` and copy-paste, like `kubectl get`. Every cell and value is shown with its control
characters escaped (`\x1b`, not the byte): names and messages may come from a hostile registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

from google.protobuf.timestamp_pb2 import Timestamp
from regsync.common.text import escape_controls
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb

NONE = "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the last column is not padded."""
    rows = [[escape_controls(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    """`key:  value` lines with the values aligned."""
    width = max((len(key) for key, _ in pairs), default=0) + 1
    return "\n".join(f"{key + ':':<{width}}  {escape_controls(value)}".rstrip()
                     for key, value in pairs)


def duration(seconds: float) -> str:
    """Short and readable: 0.4s, 12s, 3m05s, 2h03m, 3d04h."""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def when(stamp: Timestamp, tz: tzinfo | None = None) -> str:
    """Local wall-clock time to the second, or "-" for an unset timestamp."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return NONE
    moment = datetime.fromtimestamp(stamp.seconds, UTC).astimezone(tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def status_name(status: pb.ExecutionStatus.ValueType) -> str:
    """EXECUTION_STATUS_SUCCEEDED -> "succeeded"."""
    return _enum_word(pb.ExecutionStatus.Name(status), "EXECUTION_STATUS_")


def trigger_name(trigger: pb.Trigger.ValueType) -> str:
    return _enum_word(pb.Trigger.Name(trigger), "TRIGGER_")


def outcome_name(outcome: ev.TagOutcome.ValueType) -> str:
    return _enum_word(ev.TagOutcome.Name(outcome), "TAG_OUTCOME_")


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def or_none(text: str) -> str:
    return text if text else NONE


def short_digest(digest: str) -> str:
    """sha256:0123456789ab… -> sha256:0123456789ab (12 hex digits, like docker)."""
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:12]}" if hexdigits else or_none(digest)


def _enum_word(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower()
