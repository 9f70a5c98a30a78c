"""One byte formatter for every program: binary units, the same text in ctl, panel and once."""

from __future__ import annotations

import pytest
from regsync.common.units import size
from regsync.daemon.cli.console import summary
from regsync.daemon.engine.events import Counters
from regsync.daemon.engine.report import RunReport


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (1000, "1000 B"), (1024, "1.0 KiB"), (5_000_000, "4.8 MiB"),
    (150 * 1024**2, "150 MiB"), (3 * 1024**3, "3.0 GiB"),
])
def test_binary_units(n: int, text: str) -> None:
    assert size(n) == text


def test_once_prints_binary_units() -> None:
    """`regsyncd once` printed decimal KB/MB while regsyncctl and the panel printed KiB/MiB."""
    report = RunReport(counters=Counters(bytes_copied=3 * 1024**3))
    report.finished = report.started + 1
    bytes_line = next(line for line in summary(report).splitlines() if line.startswith("bytes:"))
    assert bytes_line.startswith("bytes: 3.0 GiB in ") and "(3.0 GiB/s)" in bytes_line
