"""The client other services use to ask escalation's Tasks service over gRPC."""

from __future__ import annotations

from gridline.contracts.v1 import tasks_pb2, tasks_pb2_grpc
from gridline.rpc import call, channel


class TasksClient:
    """Typed calls to the Tasks service with a deadline and retries on transient errors."""

    def __init__(self, target: str, timeout: float = 2.0, attempts: int = 3) -> None:
        self._channel = channel(target)
        self._stub = tasks_pb2_grpc.TasksStub(self._channel)
        self._timeout = timeout
        self._attempts = attempts

    async def __aenter__(self) -> TasksClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._channel.close()

    async def tasks_of_report(self, report_id: str) -> list[tasks_pb2.Task]:
        """The tasks a report became."""
        reply = await call(
            self._stub.FindTasks,
            tasks_pb2.FindTasksRequest(report_id=report_id),
            deadline=self._timeout,
            attempts=self._attempts,
        )
        return list(reply.tasks)

    async def acknowledge(self, task_id: str, actor: str) -> tasks_pb2.Task:
        """Acknowledge a task on behalf of `actor`."""
        return await call(
            self._stub.Acknowledge,
            tasks_pb2.AcknowledgeRequest(task_id=task_id, actor=actor),
            deadline=self._timeout,
            attempts=self._attempts,
        )
