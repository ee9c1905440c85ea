"""Escalation's gRPC Tasks service."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from gridline.bus.producer import BrokerUnavailable, EventProducer
from gridline.contracts.v1 import tasks_pb2, tasks_pb2_grpc
from gridline.db import Database
from gridline.timestamps import to_timestamp
from services.escalation import flows, storage
from services.escalation.domain import TransitionRefused


def task_message(task: storage.Task, escalations: Sequence[storage.Escalation]) -> tasks_pb2.Task:
    """The contract form of a task."""
    message = tasks_pb2.Task(
        task_id=task.task_id,
        report_id=task.report_id,
        state=task.state,
        level=task.level,  # type: ignore[arg-type]
        triage=task.triage,
        grid_id=task.grid_id,
        summary=task.summary,
        escalations=[
            tasks_pb2.TaskEscalation(
                level=e.level,  # type: ignore[arg-type]
                reason=e.reason,
                group_id=e.group_id,
                raised_at=to_timestamp(e.raised_at),
            )
            for e in escalations
        ],
    )
    if task.deadline_at is not None:
        message.deadline_at.CopyFrom(to_timestamp(task.deadline_at))
    if task.acknowledged_at is not None:
        message.acknowledged_at.CopyFrom(to_timestamp(task.acknowledged_at))
    return message


class TasksServicer(tasks_pb2_grpc.TasksServicer):
    """Reads and acts on tasks for other systems."""

    def __init__(self, db: Database, producer: EventProducer) -> None:
        self._db = db
        self._producer = producer

    async def GetTask(
        self, request: tasks_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        """One task and its escalations."""
        async with self._db.session() as session:
            task = await storage.get_task(session, request.task_id)
            if task is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no task {request.task_id!r}")
            escalations = await storage.escalations_of(session, request.task_id)
        return task_message(task, escalations)

    async def FindTasks(
        self, request: tasks_pb2.FindTasksRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.FindTasksResponse:
        """The tasks of a report."""
        async with self._db.session() as session:
            tasks = await storage.tasks_of_report(session, request.report_id)
            return tasks_pb2.FindTasksResponse(
                tasks=[
                    task_message(t, await storage.escalations_of(session, t.task_id)) for t in tasks
                ]
            )

    async def Acknowledge(
        self, request: tasks_pb2.AcknowledgeRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        """Acknowledge a task."""
        try:
            task, escalations = await flows.acknowledge_task(
                self._db, self._producer, request.task_id, actor=request.actor or "grpc"
            )
        except flows.TaskNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no task {request.task_id!r}")
        except TransitionRefused as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except BrokerUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return task_message(task, escalations)
