"""The client other services use to ask escalation's Tasks service over gRPC."""

from __future__ import annotations

from functools import cached_property

from gridline.contracts.v1 import tasks_pb2, tasks_pb2_grpc
from gridline.rpc import RpcClient


class TasksClient(RpcClient):
    """Typed calls to the Tasks service with a deadline and retries on transient errors.

    `target` names every escalation replica: in Kubernetes the headless Service,
    `dns:///escalation-grpc.<namespace>.svc.cluster.local:50052`. Calls go round robin over
    the replicas (`gridline.rpc.channel`), and a retry after one failed goes to the next.
    """

    @cached_property
    def _stub(self) -> tasks_pb2_grpc.TasksStub:
        return tasks_pb2_grpc.TasksStub(self._channel)

    async def tasks_of_report(self, report_id: str) -> list[tasks_pb2.Task]:
        """The tasks a report became."""
        reply = await self._call(
            self._stub.FindTasks, tasks_pb2.FindTasksRequest(report_id=report_id)
        )
        return list(reply.tasks)

    async def acknowledge(self, task_id: str, actor: str) -> tasks_pb2.Task:
        """Acknowledge a task on behalf of `actor`."""
        return await self._call(
            self._stub.Acknowledge, tasks_pb2.AcknowledgeRequest(task_id=task_id, actor=actor)
        )
