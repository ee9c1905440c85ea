"""Escalation's consumer of `tasks.v1`: stores each assigned task with its first deadline."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope
from gridline.contracts.v1 import events_pb2
from gridline.links import task_link
from gridline.timestamps import from_timestamp, now
from services.escalation import metrics, storage
from services.escalation.domain import TaskState

GROUP = "escalation.tasks"


def task_handler(ack_deadline: timedelta, link_base: str) -> Handler:
    """Store assigned tasks; other task events are escalation's own and already applied."""

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        event = envelope.message
        if not isinstance(event, events_pb2.TaskEvent):
            raise TypeError(f"{topics.TASKS} carries TaskEvent, not {envelope.schema}")
        if event.kind != events_pb2.TASK_EVENT_KIND_ASSIGNED:
            return
        if await storage.get_task(session, event.task_id) is not None:
            return
        assigned_at = now()
        session.add(
            storage.Task(
                task_id=event.task_id,
                report_id=event.report_id,
                node_id=event.household_id or event.community_id or event.grid_id,
                grid_id=event.grid_id,
                triage=event.triage,
                state=TaskState.ASSIGNED,
                level=event.assignee.level,
                assignee_group_id=event.assignee.group_id,
                summary=event.summary[:500],
                link=task_link(link_base, event.task_id),
                report_accepted_at=from_timestamp(event.accepted_at),
                created_at=assigned_at,
                deadline_at=assigned_at + ack_deadline,
            )
        )
        metrics.TASKS_OPENED.labels("triage" if event.triage else "household").inc()

    return handle
