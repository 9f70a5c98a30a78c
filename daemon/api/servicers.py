"""The four gRPC services, as thin as crane's commands: convert, call the plane in trio, convert.

Every method runs on the asyncio thread; the `ControlPlane` runs in trio, reached only through the
`TrioPortal`. Errors become status codes in `status.reported_as_status`, the one place that
decides what a failure means to a client.
"""

from __future__ import annotations

import functools
from typing import Any

from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

from ..base.errors import ConfigError
from ..control.plane import ControlPlane
from ..engine.scope_preview import preview_limit
from . import inbound, outbound
from .bridge import TrioPortal
from .status import reported_as_status

# grpcio ships no type information: the context is the grpc.aio ServicerContext.
Context = Any


class _Base:
    def __init__(self, portal: TrioPortal, plane: ControlPlane) -> None:
        self.portal = portal
        self.plane = plane

    async def _registry_names(self) -> list[str]:
        """Task specs are validated against the registries the daemon knows now."""
        records = await self.portal.call(self.plane.list_registries)
        return [record.name for record in records]


class RegistryServicer(_Base, rpc.RegistryServiceServicer):
    async def CreateRegistry(self, request: pb.RegistrySpec, context: Context) -> pb.Registry:
        async with reported_as_status(context, "CreateRegistry"):
            settings, _ = inbound.registry_settings(request)
            return outbound.registry(await self.portal.call(self.plane.create_registry, settings))

    async def ListRegistries(
        self, request: pb.ListRegistriesRequest, context: Context
    ) -> pb.ListRegistriesResponse:
        async with reported_as_status(context, "ListRegistries"):
            records = await self.portal.call(self.plane.list_registries)
            return pb.ListRegistriesResponse(registries=[outbound.registry(r) for r in records])

    async def GetRegistry(self, request: pb.NameRequest, context: Context) -> pb.Registry:
        async with reported_as_status(context, "GetRegistry"):
            return outbound.registry(await self.portal.call(self.plane.get_registry, request.name))

    async def UpdateRegistry(self, request: pb.RegistrySpec, context: Context) -> pb.Registry:
        async with reported_as_status(context, "UpdateRegistry"):
            settings, keep = inbound.registry_settings(request, update=True)
            update = functools.partial(self.plane.update_registry, settings, keep_password=keep)
            return outbound.registry(await self.portal.call(update))

    async def DeleteRegistry(self, request: pb.NameRequest, context: Context) -> pb.DeleteResponse:
        async with reported_as_status(context, "DeleteRegistry"):
            await self.portal.call(self.plane.delete_registry, request.name)
            return pb.DeleteResponse()

    async def TestRegistry(
        self, request: pb.NameRequest, context: Context
    ) -> pb.TestRegistryResponse:
        async with reported_as_status(context, "TestRegistry"):
            return outbound.verdict(await self.portal.call(self.plane.test_registry, request.name))


class TaskServicer(_Base, rpc.TaskServiceServicer):
    async def CreateTask(self, request: pb.TaskSpec, context: Context) -> pb.Task:
        async with reported_as_status(context, "CreateTask"):
            rule = inbound.sync_rule(request, await self._registry_names())
            return outbound.task(await self.portal.call(self.plane.create_task, rule))

    async def ListTasks(
        self, request: pb.ListTasksRequest, context: Context
    ) -> pb.ListTasksResponse:
        async with reported_as_status(context, "ListTasks"):
            records = await self.portal.call(self.plane.list_tasks)
            return pb.ListTasksResponse(tasks=[outbound.task(r) for r in records])

    async def GetTask(self, request: pb.NameRequest, context: Context) -> pb.Task:
        async with reported_as_status(context, "GetTask"):
            return outbound.task(await self.portal.call(self.plane.get_task, request.name))

    async def UpdateTask(self, request: pb.TaskSpec, context: Context) -> pb.Task:
        async with reported_as_status(context, "UpdateTask"):
            rule = inbound.sync_rule(request, await self._registry_names())
            return outbound.task(await self.portal.call(self.plane.update_task, rule))

    async def DeleteTask(self, request: pb.NameRequest, context: Context) -> pb.DeleteResponse:
        async with reported_as_status(context, "DeleteTask"):
            await self.portal.call(self.plane.delete_task, request.name)
            return pb.DeleteResponse()

    async def RunTask(self, request: pb.NameRequest, context: Context) -> pb.Execution:
        async with reported_as_status(context, "RunTask"):
            run = functools.partial(self.plane.run_task, force_prune=request.force_prune)
            return outbound.execution(await self.portal.call(run, request.name))

    async def StopTask(self, request: pb.NameRequest, context: Context) -> pb.Execution:
        async with reported_as_status(context, "StopTask"):
            return outbound.execution(await self.portal.call(self.plane.stop_task, request.name))

    async def EnableTask(self, request: pb.NameRequest, context: Context) -> pb.Task:
        async with reported_as_status(context, "EnableTask"):
            call = self.plane.set_task_enabled
            return outbound.task(await self.portal.call(call, request.name, True))

    async def DisableTask(self, request: pb.NameRequest, context: Context) -> pb.Task:
        async with reported_as_status(context, "DisableTask"):
            call = self.plane.set_task_enabled
            return outbound.task(await self.portal.call(call, request.name, False))

    async def PlanTask(self, request: pb.NameRequest, context: Context) -> pb.PlanResponse:
        async with reported_as_status(context, "PlanTask"):
            selection, plans, prune = await self.portal.call(self.plane.plan_task, request.name)
            return outbound.plan_response(selection, plans, prune)

    async def PreviewTags(
        self, request: pb.PreviewTagsRequest, context: Context
    ) -> pb.PreviewTagsResponse:
        async with reported_as_status(context, "PreviewTags"):
            tags = list(request.tags) or None
            names = await self._registry_names()
            rule = inbound.preview_rule(request.spec, names, listing=tags is None)
            selection = await self.portal.call(self.plane.preview_tags, rule, tags)
            return outbound.preview_response(selection)

    async def PreviewSchedule(
        self, request: pb.PreviewScheduleRequest, context: Context
    ) -> pb.PreviewScheduleResponse:
        async with reported_as_status(context, "PreviewSchedule"):
            call = self.plane.preview_schedule
            preview = await self.portal.call(call, request.cron_expression, request.count)
            return pb.PreviewScheduleResponse(
                cron_expression=preview.expression,
                next_runs=[outbound.timestamp(t) for t in preview.times])

    async def PreviewRepositories(
        self, request: pb.PreviewRepositoriesRequest, context: Context
    ) -> pb.PreviewRepositoriesResponse:
        async with reported_as_status(context, "PreviewRepositories"):
            if request.limit < 0:
                raise ConfigError(f"limit: must not be negative, got {request.limit}")
            names = await self._registry_names()
            rule = inbound.preview_rule(request.spec, names, listing=True)
            found = await self.portal.call(self.plane.preview_repositories, rule,
                                           preview_limit(request.limit))
            return outbound.scope_preview(found)


class ExecutionServicer(_Base, rpc.ExecutionServiceServicer):
    async def ListExecutions(
        self, request: pb.ListExecutionsRequest, context: Context
    ) -> pb.ListExecutionsResponse:
        async with reported_as_status(context, "ListExecutions"):
            query = inbound.execution_query(request)
            records, next_id = await self.portal.call(self.plane.list_executions, query)
            return pb.ListExecutionsResponse(
                executions=[outbound.execution(r) for r in records], next_before_id=next_id or 0
            )

    async def GetExecution(
        self, request: pb.ExecutionRequest, context: Context
    ) -> pb.ExecutionDetail:
        async with reported_as_status(context, "GetExecution"):
            after, limit = inbound.results_window(request)
            get = functools.partial(self.plane.get_execution, request.id, after=after,
                                    limit=limit)
            record, page = await self.portal.call(get)
            return outbound.execution_detail(record, page)

    async def GetLogs(self, request: pb.LogsRequest, context: Context) -> pb.LogsResponse:
        async with reported_as_status(context, "GetLogs"):
            offset, limit = inbound.log_window(request)
            logs = functools.partial(
                self.plane.get_logs, request.execution_id, offset=offset, limit=limit
            )
            page = await self.portal.call(logs)
            return pb.LogsResponse(lines=[outbound.log_line(line) for line in page.lines],
                                   total=page.total)

    async def RetryFailed(self, request: pb.ExecutionRequest, context: Context) -> pb.Execution:
        async with reported_as_status(context, "RetryFailed"):
            return outbound.execution(await self.portal.call(self.plane.retry_failed, request.id))


class ControlServicer(_Base, rpc.ControlServiceServicer):
    async def GetStats(self, request: pb.StatsRequest, context: Context) -> pb.Stats:
        async with reported_as_status(context, "GetStats"):
            return outbound.stats(await self.portal.call(self.plane.stats))

    async def GetStatus(self, request: pb.StatusRequest, context: Context) -> pb.Status:
        async with reported_as_status(context, "GetStatus"):
            return outbound.daemon_status(await self.portal.call(self.plane.status))

    async def Apply(self, request: pb.ApplyRequest, context: Context) -> pb.ApplyResponse:
        async with reported_as_status(context, "Apply"):
            apply = functools.partial(
                self.plane.apply, request.yaml, source=request.source or "<api>"
            )
            return outbound.apply_response(await self.portal.call(apply))

    # A coroutine writing with context.write, not an async generator: when the client goes away,
    # grpc cancels this one frame, and leaving `stream` cancels the trio side deterministically
    # (a suspended generator would only be closed whenever it is garbage collected).
    async def Watch(  # type: ignore[override]
        self, request: pb.WatchRequest, context: Context
    ) -> None:
        async with reported_as_status(context, "Watch"):
            watch = functools.partial(
                self.plane.watch, request.execution_id or None, logs=request.logs
            )
            async with self.portal.stream(watch) as batches:
                async for batch in batches:
                    for item in batch:
                        await context.write(outbound.watch_event(item))
