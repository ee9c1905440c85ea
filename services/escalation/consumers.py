"""Escalation's consumer of `tasks.v1`: stores each assigned task with its first deadline and
applies a later report's higher risk to it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import before_commit
from gridline.logging import get_logger
from gridline.timestamps import from_timestamp, now
from services.escalation import flows, measure_flows, metrics, storage
from services.escalation.domain import TaskState
from services.escalation.measures import FollowUp
from services.escalation.policy import DeadlinePolicy

log = get_logger(__name__)

GROUP = "escalation.tasks"

# Assignment's events; the other kinds on the topic are escalation's own, already applied.
_ACTED_ON = frozenset({events_pb2.TASK_EVENT_KIND_ASSIGNED, events_pb2.TASK_EVENT_KIND_RISK_RAISED})


def accepts(envelope: Envelope) -> bool:
    """Whether the consumer acts on the event: ASSIGNED and RISK_RAISED task events.

    Anything that is not a TaskEvent is taken too, so that the handler refuses it and it is
    dead-lettered rather than silently skipped.
    """
    event = envelope.message
    return not isinstance(event, events_pb2.TaskEvent) or event.kind in _ACTED_ON


def task_handler(policy: DeadlinePolicy, clock: Callable[[], datetime] = now) -> Handler:
    """Store assigned tasks and apply raised risks; other task events are escalation's own and
    already applied.

    The first deadline is the plan's first step: at once for a high-risk origin when the plan
    says so, so the deadline watcher raises it durably and once. The task keeps the event's
    follow-up plan (`measures.FollowUp`); a high-risk task's notice to the offices is a timer
    due now, fired by the watcher too. A task id already stored (a
    replay, or the same task twice in one batch) is left as it is. A raised risk re-plans the
    task's deadlines the same way (`flows.raise_risk`).
    """

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        event = envelope.message
        if not isinstance(event, events_pb2.TaskEvent):
            raise TypeError(f"{topics.TASKS} carries TaskEvent, not {envelope.schema}")
        if event.kind == events_pb2.TASK_EVENT_KIND_RISK_RAISED:
            await write_tasks(session)  # the task may be one of this batch's new ones
            await flows.raise_risk(session, policy, event, clock())
            return
        if event.kind != events_pb2.TASK_EVENT_KIND_ASSIGNED:
            return
        assigned_at = clock()
        # Plan by the risk assignment decided (the risk-area list may raise a reported risk).
        risk = event.decided_risk or event.origin_risk
        # Told to the township and county offices at once, whatever the cadre does.
        told = (
            [measure_flows.high_risk_timer(event.task_id, assigned_at)]
            if risk == common_pb2.RISK_LEVEL_HIGH
            else []
        )
        storage.add_new_task(
            session,
            {
                "task_id": event.task_id,
                "report_id": event.report_id,
                "node_id": event.household_id or event.community_id or event.grid_id,
                "grid_id": event.grid_id,
                "community_id": event.community_id,
                "township_id": event.township_id,
                "triage": event.triage,
                "state": TaskState.TRIAGE if event.triage else TaskState.ASSIGNED,
                "level": event.assignee.level,
                "assignee_group_id": event.assignee.group_id,
                "assignee_level": event.assignee.level,
                "origin_risk": risk,
                "measure_id": event.measure_id[:64],
                "measure_name": event.measure_name[:100],
                "summary": event.summary[:500],
                "report_accepted_at": from_timestamp(event.accepted_at),
                "report_source": event.report_source,
                "created_at": assigned_at,
                "assigned_at": assigned_at,
                "deadline_at": policy.deadline(risk, 0, assigned_at),
                "follow_up": _plan(event),
                "candidates": list(event.candidate_node_ids) or None,
            },
            told,
        )
        # The batch's new tasks are written together as its transaction commits.
        before_commit(session, "escalation.new_tasks", write_tasks)

    return handle


def _plan(event: events_pb2.TaskEvent) -> dict[str, Any] | None:
    """The event's follow-up plan as the task keeps it; None without one.

    A plan that cannot be read (a check-in time not HH:MM) does not cost the task: it is stored
    without, a measure started on it runs the usual days of its kind, and the fault is logged.
    """
    if not event.HasField("follow_up"):
        return None
    try:
        return FollowUp.from_event(event.follow_up).encode()
    except ValueError as fault:
        log.warning("follow-up plan unreadable", task_id=event.task_id, error=str(fault))
        return None


async def write_tasks(session: AsyncSession) -> None:
    """Store the new tasks gathered in the transaction and count the ones that were new."""
    for triage in await storage.write_new_tasks(session):
        metrics.TASKS_OPENED.labels("triage" if triage else "household").inc()
