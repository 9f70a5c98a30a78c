"""What the pages may ask of regsyncd: one typed method per RPC, bound to a tab's token.

Pages read like the product ("api.run_task(name)") and never touch stubs or metadata. Each
method raises `DaemonError` (see client.py) with a message fit for a notification.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .client import DaemonClient


@dataclass(frozen=True)
class Api:
    """regsyncd's API as one browser tab sees it (with that tab's token, if any)."""

    client: DaemonClient
    token: str | None = field(default=None, repr=False)

    # registries --------------------------------------------------------------------------------
    async def list_registries(self) -> list[pb.Registry]:
        reply = await self.client.call(lambda s: s.registries.ListRegistries,
                                       pb.ListRegistriesRequest(), token=self.token)
        return list(reply.registries)

    async def get_registry(self, name: str) -> pb.Registry:
        reply: pb.Registry = await self.client.call(
            lambda s: s.registries.GetRegistry, pb.NameRequest(name=name), token=self.token)
        return reply

    async def save_registry(self, spec: pb.RegistrySpec, *, create: bool) -> pb.Registry:
        reply: pb.Registry = await self.client.call(
            (lambda s: s.registries.CreateRegistry) if create
            else (lambda s: s.registries.UpdateRegistry), spec, token=self.token)
        return reply

    async def delete_registry(self, name: str) -> object:
        """The (empty) reply: never None, so `Session.attempt` tells success from failure."""
        reply: object = await self.client.call(
            lambda s: s.registries.DeleteRegistry, pb.NameRequest(name=name), token=self.token)
        return reply

    async def test_registry(self, name: str) -> pb.TestRegistryResponse:
        reply: pb.TestRegistryResponse = await self.client.call(
            lambda s: s.registries.TestRegistry, pb.NameRequest(name=name), token=self.token)
        return reply

    # tasks -------------------------------------------------------------------------------------
    async def list_tasks(self) -> list[pb.Task]:
        reply = await self.client.call(lambda s: s.tasks.ListTasks, pb.ListTasksRequest(),
                                       token=self.token)
        return list(reply.tasks)

    async def get_task(self, name: str) -> pb.Task:
        reply: pb.Task = await self.client.call(lambda s: s.tasks.GetTask,
                                                pb.NameRequest(name=name), token=self.token)
        return reply

    async def save_task(self, spec: pb.TaskSpec, *, create: bool) -> pb.Task:
        reply: pb.Task = await self.client.call(
            (lambda s: s.tasks.CreateTask) if create else (lambda s: s.tasks.UpdateTask),
            spec, token=self.token)
        return reply

    async def task_action(self, action: str, name: str) -> object:
        """run, stop, enable, disable or delete a task by name; the reply (never None)."""
        methods = {"run": "RunTask", "stop": "StopTask", "enable": "EnableTask",
                   "disable": "DisableTask", "delete": "DeleteTask"}
        method = methods[action]
        reply: object = await self.client.call(
            lambda s: getattr(s.tasks, method), pb.NameRequest(name=name), token=self.token)
        return reply

    async def preview_tags(self, spec: pb.TaskSpec,
                           tags: Sequence[str] = ()) -> pb.PreviewTagsResponse:
        reply: pb.PreviewTagsResponse = await self.client.call(
            lambda s: s.tasks.PreviewTags, pb.PreviewTagsRequest(spec=spec, tags=list(tags)),
            token=self.token)
        return reply

    async def preview_repositories(self, spec: pb.TaskSpec,
                                   limit: int = 0) -> pb.PreviewRepositoriesResponse:
        reply: pb.PreviewRepositoriesResponse = await self.client.call(
            lambda s: s.tasks.PreviewRepositories,
            pb.PreviewRepositoriesRequest(spec=spec, limit=limit), token=self.token)
        return reply

    async def preview_schedule(self, cron: str) -> pb.PreviewScheduleResponse:
        """The next fire times of `cron` as the daemon's scheduler computes them (UTC)."""
        reply: pb.PreviewScheduleResponse = await self.client.call(
            lambda s: s.tasks.PreviewSchedule, pb.PreviewScheduleRequest(cron_expression=cron),
            token=self.token)
        return reply

    # executions --------------------------------------------------------------------------------
    async def list_executions(self, *, task: str = "", statuses: Sequence[int] = (),
                              limit: int = 50) -> list[pb.Execution]:
        request = pb.ListExecutionsRequest(
            task=task, status=[pb.ExecutionStatus.ValueType(s) for s in statuses], limit=limit)
        reply = await self.client.call(lambda s: s.executions.ListExecutions, request,
                                       token=self.token)
        return list(reply.executions)

    async def get_execution(self, execution_id: int, *, page_size: int = 0,
                            page_token: str = "") -> pb.ExecutionDetail:
        """The execution and one page of its per-tag results (`next_page_token` for more)."""
        request = pb.ExecutionRequest(id=execution_id, page_size=page_size, page_token=page_token)
        reply: pb.ExecutionDetail = await self.client.call(
            lambda s: s.executions.GetExecution, request, token=self.token)
        return reply

    async def get_logs(self, execution_id: int, *, offset: int = 0,
                       limit: int = 0) -> pb.LogsResponse:
        """One page of stored lines from `offset` (the daemon caps a page), and their total."""
        reply: pb.LogsResponse = await self.client.call(
            lambda s: s.executions.GetLogs,
            pb.LogsRequest(execution_id=execution_id, offset=offset, limit=limit),
            token=self.token)
        return reply

    async def retry_failed(self, execution_id: int) -> pb.Execution:
        reply: pb.Execution = await self.client.call(
            lambda s: s.executions.RetryFailed, pb.ExecutionRequest(id=execution_id),
            token=self.token)
        return reply

    # the daemon --------------------------------------------------------------------------------
    async def stats(self) -> pb.Stats:
        reply: pb.Stats = await self.client.call(lambda s: s.control.GetStats,
                                                 pb.StatsRequest(), token=self.token)
        return reply

    async def daily_trends(self, days: int = 30) -> list[pb.DayTrend]:
        reply = await self.client.call(lambda s: s.trends.GetDailyTrends,
                                       pb.DailyTrendsRequest(days=days), token=self.token)
        return list(reply.days)

    # webhooks ----------------------------------------------------------------------------------
    async def list_notifications(self) -> list[pb.Notification]:
        reply = await self.client.call(lambda s: s.notifications.ListNotifications,
                                       pb.ListNotificationsRequest(), token=self.token)
        return list(reply.notifications)

    async def create_notification(self, spec: pb.NotificationSpec) -> pb.Notification:
        reply: pb.Notification = await self.client.call(
            lambda s: s.notifications.CreateNotification, spec, token=self.token)
        return reply

    async def delete_notification(self, name: str) -> object:
        reply: object = await self.client.call(
            lambda s: s.notifications.DeleteNotification, pb.NameRequest(name=name),
            token=self.token)
        return reply

    def watch(self, *, execution_id: int = 0, logs: bool = False) -> AsyncIterator[pb.WatchEvent]:
        return self.client.watch(pb.WatchRequest(execution_id=execution_id, logs=logs),
                                 token=self.token)
