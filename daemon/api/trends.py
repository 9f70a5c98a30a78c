"""The TrendService: daily totals for the panel's charts, as thin as the other servicers."""

from __future__ import annotations

from typing import Any

from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

from ..monitor.control import TrendPlane
from ..monitor.trends import Day
from ..store.records import ExecutionStatus
from .bridge import TrioPortal
from .status import reported_as_status

Context = Any
DEFAULT_DAYS = 30


def day_trend(day: Day) -> pb.DayTrend:
    count = day.counts.get
    return pb.DayTrend(
        date=day.day.isoformat(), succeeded=count(ExecutionStatus.SUCCEEDED, 0),
        failed=count(ExecutionStatus.FAILED, 0), stopped=count(ExecutionStatus.STOPPED, 0),
        interrupted=count(ExecutionStatus.INTERRUPTED, 0), bytes_copied=day.bytes_copied)


class TrendServicer(rpc.TrendServiceServicer):
    def __init__(self, portal: TrioPortal, plane: TrendPlane) -> None:
        self.portal = portal
        self.plane = plane

    async def GetDailyTrends(self, request: pb.DailyTrendsRequest,
                             context: Context) -> pb.DailyTrendsResponse:
        async with reported_as_status(context, "GetDailyTrends"):
            days = await self.portal.call(self.plane.daily_trends,
                                          request.days or DEFAULT_DAYS)
            return pb.DailyTrendsResponse(days=[day_trend(d) for d in days])


def add_to_server(server: Any, portal: TrioPortal, plane: object) -> bool:
    if not isinstance(plane, TrendPlane):
        return False
    rpc.add_TrendServiceServicer_to_server(TrendServicer(portal, plane), server)
    return True
