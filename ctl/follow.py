"""Following one execution to its end through the Watch stream, despite the races.

A watcher that joins after the execution ended hears nothing, and the stream may end or break
while the execution still runs. So a reader thread pumps the stream into a queue, and whenever
the stream is quiet for `idle` seconds (or ends) the execution is asked for directly: a
finished execution ends the follow whatever the stream did. Ctrl-C in the main thread cancels
the stream (the execution keeps running in the daemon).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .client import Daemon

ACTIVE = frozenset({
    pb.EXECUTION_STATUS_UNSPECIFIED, pb.EXECUTION_STATUS_QUEUED, pb.EXECUTION_STATUS_RUNNING,
})

_END = object()  # the stream finished (or was cancelled)
RESULTS_PAGE = 5000  # the daemon's most per GetExecution


def finished(status: pb.ExecutionStatus.ValueType) -> bool:
    return status not in ACTIVE


def get_execution(daemon: Daemon, execution_id: int) -> pb.ExecutionDetail:
    """The execution with every per-tag result: the daemon pages them (a run of 100,000 tags
    is far over one message's 4 MiB), so this asks page after page and joins them."""
    request = pb.ExecutionRequest(id=execution_id, page_size=RESULTS_PAGE)
    detail: pb.ExecutionDetail = daemon.call(daemon.executions.GetExecution, request)
    while detail.next_page_token:
        request.page_token = detail.next_page_token
        page: pb.ExecutionDetail = daemon.call(daemon.executions.GetExecution, request)
        detail.tags.extend(page.tags)
        detail.execution.CopyFrom(page.execution)  # the newest state
        detail.next_page_token = page.next_page_token
        detail.total_tags = page.total_tags
    return detail


def execution_status(daemon: Daemon, execution_id: int) -> pb.Execution:
    """Only the execution (one result at most comes along): for polling."""
    request = pb.ExecutionRequest(id=execution_id, page_size=1)
    detail: pb.ExecutionDetail = daemon.call(daemon.executions.GetExecution, request)
    return detail.execution


@contextmanager
def watching(daemon: Daemon, execution_id: int, *, logs: bool) -> Iterator[queue.Queue[Any]]:
    """A queue of WatchEvents (then `_END`, or a grpc.RpcError) fed by a reader thread."""
    events: queue.Queue[Any] = queue.Queue()
    call = daemon.stream(
        daemon.control.Watch, pb.WatchRequest(execution_id=execution_id, logs=logs)
    )
    reader = threading.Thread(target=_pump, args=(call, events), daemon=True,
                              name=f"watch-{execution_id}")
    reader.start()
    try:
        yield events
    finally:
        call.cancel()


def _pump(call: Any, events: queue.Queue[Any]) -> None:
    try:
        for event in call:
            events.put(event)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            events.put(exc)
    finally:
        events.put(_END)


def follow(
    daemon: Daemon,
    execution_id: int,
    *,
    on_event: Callable[[pb.WatchEvent], None],
    logs: bool = False,
    idle: float = 2.0,
    on_watching: Callable[[], None] | None = None,
) -> pb.ExecutionDetail:
    """Feed the execution's events to `on_event` until it finishes; return its final detail.

    `on_watching` runs once the stream is open (`logs -f` fetches the stored lines then, so
    that nothing falls between the stored log and the live one).

    Raises:
        CtlError: the daemon failed or went away.
    """
    while True:
        with watching(daemon, execution_id, logs=logs) as events:
            if on_watching is not None:
                on_watching()
                on_watching = None
            detail = _drain(daemon, execution_id, events, on_event, idle)
        if detail is not None:
            return detail
        if finished(execution_status(daemon, execution_id).status):
            return get_execution(daemon, execution_id)
        time.sleep(idle / 2)  # the stream ended early: watch again


def _drain(
    daemon: Daemon,
    execution_id: int,
    events: queue.Queue[Any],
    on_event: Callable[[pb.WatchEvent], None],
    idle: float,
) -> pb.ExecutionDetail | None:
    """Events until the execution ends (its detail) or the stream ends (None)."""
    while True:
        try:
            item = events.get(timeout=idle)
        except queue.Empty:
            if finished(execution_status(daemon, execution_id).status):
                return get_execution(daemon, execution_id)
            continue
        if item is _END:
            return None
        if isinstance(item, grpc.RpcError):
            raise daemon.error(item)
        if item.execution_id not in (0, execution_id):
            continue
        on_event(item)
        if item.WhichOneof("event") == "execution" and finished(item.execution.status):
            return get_execution(daemon, execution_id)
