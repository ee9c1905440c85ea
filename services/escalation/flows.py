"""Escalation's actions, shared by the HTTP routes and the gRPC servicer."""

from __future__ import annotations

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import events_pb2
from gridline.db import Database
from gridline.ids import derived_id
from gridline.timestamps import now, to_timestamp
from services.escalation import metrics, storage
from services.escalation.domain import acknowledge


class TaskNotFound(Exception):
    """No task has this id."""


async def acknowledge_task(
    db: Database, producer: EventProducer, task_id: str, actor: str
) -> tuple[storage.Task, list[storage.Escalation]]:
    """Acknowledge a task and cancel its deadline; publishes the change before committing.

    Raises TaskNotFound, TransitionRefused (naming the current state) or BrokerUnavailable.
    """
    moment = now()
    async with db.session() as session:
        task = await storage.get_task(session, task_id, for_update=True)
        if task is None:
            raise TaskNotFound(task_id)
        task.state = acknowledge(task.state)
        task.acknowledged_at = moment
        task.deadline_at = None
        event = events_pb2.TaskEvent(
            task_id=task.task_id,
            kind=events_pb2.TASK_EVENT_KIND_ACKNOWLEDGED,
            report_id=task.report_id,
            grid_id=task.grid_id,
            occurred_at=to_timestamp(moment),
            actor=actor,
        )
        await producer.publish(
            topics.TASKS,
            Envelope(
                event_id=derived_id("task-event", task.task_id, "acknowledged"),
                key=task.node_id,
                message=event,
            ),
        )
        session.add(task)
        escalations = list(await storage.escalations_of(session, task_id))
    metrics.TASKS_ACKNOWLEDGED.inc()
    return task, escalations
