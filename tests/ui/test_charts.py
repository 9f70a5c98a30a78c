"""The trend charts' options and the throughput meter: pure, no browser."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from regsync.proto.regsync.v1 import events_pb2 as ev
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.ui import charts


def _stamp(seconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromtimestamp(1_700_000_000 + seconds, UTC))
    return stamp


def _execution(id: int, status: int, seconds: int, copied: int) -> pb.Execution:
    return pb.Execution(id=id, task="app", status=status, started=_stamp(0),  # type: ignore[arg-type]
                        finished=_stamp(seconds), counters=ev.Counters(bytes_copied=copied))


def test_daily_charts_stack_statuses_and_show_mib() -> None:
    days = [pb.DayTrend(date="2026-03-01", succeeded=2, failed=1, bytes_copied=3 * charts.MIB),
            pb.DayTrend(date="2026-03-02", stopped=1, interrupted=4)]
    options = charts.daily_executions(days)
    assert options["xAxis"] == {"type": "category", "data": ["03-01", "03-02"]}
    series = options["series"]
    assert isinstance(series, list)
    assert {s["name"]: s["data"] for s in series} == {
        "succeeded": [2, 0], "failed": [1, 0], "stopped": [0, 1], "interrupted": [0, 4]}
    assert {s["stack"] for s in series} == {"status"}
    bytes_series: Any = charts.daily_bytes(days)["series"]
    assert [s["data"] for s in bytes_series] == [[3.0, 0.0]]


def test_task_history_is_the_last_ended_executions_oldest_first() -> None:
    executions = [_execution(n, pb.EXECUTION_STATUS_SUCCEEDED, n, n * charts.MIB)
                  for n in range(40, 0, -1)]
    running = pb.Execution(id=41, task="app", status=pb.EXECUTION_STATUS_RUNNING)
    options = charts.task_history([running, *executions])
    assert options["xAxis"]["data"] == [f"#{n}" for n in range(11, 41)]  # type: ignore[index]
    durations, copied = (s["data"] for s in options["series"])  # type: ignore[attr-defined]
    assert durations[0] == 11 and durations[-1] == 40
    assert copied[0] == 11 and copied[-1] == 40


def test_throughput_over_the_window_and_a_restart() -> None:
    meter = charts.Throughput(window=5.0)
    assert meter.current() is None
    meter.add(0.0, 0)
    meter.add(0.1, 100)
    assert meter.current() is None  # too close together to say
    meter.add(1.0, 1000)
    assert meter.current() == 1000.0
    for t in range(2, 12):
        meter.add(float(t), 1000 + (t - 1) * 10)  # slowed to 10 B/s
    assert meter.current() is not None and meter.current() < 20  # type: ignore[operator]
    meter.add(12.0, 5)  # counters went back: another execution
    assert meter.current() is None
    assert charts.rate(None) == "-" and charts.rate(2048) == "2.0 KiB/s"
