"""Assignment's consumer of `reports.v1`."""

from __future__ import annotations

from datetime import UTC

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import events_pb2
from gridline.ids import derived_id
from gridline.links import PageLinks
from gridline.timestamps import now
from services.assignment import metrics, storage
from services.assignment.assignee import CadreLoad
from services.assignment.directory import Directory
from services.assignment.placement import place
from services.assignment.risk import Policy, RiskAreas, decide

GROUP = "assignment.reports"


def report_handler(
    directory: Directory,
    producer: EventProducer,
    links: PageLinks,
    load: CadreLoad,
    policy: Policy,
    areas: RiskAreas,
) -> Handler:
    """Place each report, decide its measure, publish task and notices, record the placement.

    The measure is decided from the risk areas as they stand when the report is placed, so a
    change applies to the next report and never rewrites a task already created.
    """

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        report = envelope.message
        if not isinstance(report, events_pb2.ReportAccepted):
            raise TypeError(f"{topics.REPORTS} carries ReportAccepted, not {envelope.schema}")
        moment = now()
        decision = decide(
            policy,
            areas,
            region_code=report.origin_region_code,
            reported_risk=report.origin_risk,
            source=report.source,
            at=moment,
        )
        placement = place(report, directory, now=moment, links=links, decision=decision, load=load)
        task = placement.task
        await producer.publish(
            topics.TASKS,
            Envelope(
                event_id=derived_id("task-event", task.task_id, "assigned"),
                key=task.household_id or task.grid_id,
                message=task,
            ),
        )
        for notice in placement.notifications:
            await producer.publish(
                topics.NOTIFICATIONS,
                Envelope(
                    event_id=notice.notification_id, key=notice.recipient.group_id, message=notice
                ),
            )
        storage.record_placement(
            session,
            report_id=report.report_id,
            task_id=task.task_id,
            node_id=placement.node_id,
            triage=placement.triage,
            assignee_id=task.assignee.person_id,
            measure_id=decision.measure_id,
            policy_version=decision.policy_version,
        )
        load.add(task.assignee.person_id)
        metrics.PLACEMENTS.labels("triage" if placement.triage else "household").inc()

    return handle


TASKS_GROUP = "assignment.tasks"


def task_handler(load: CadreLoad) -> Handler:
    """Keep cadre load in step with tasks.v1: a completed task no longer counts as open."""

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        event = envelope.message
        if not isinstance(event, events_pb2.TaskEvent):
            raise TypeError(f"{topics.TASKS} carries TaskEvent, not {envelope.schema}")
        if event.kind != events_pb2.TASK_EVENT_KIND_COMPLETED:
            return
        completed_at = (
            event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else now()
        )
        assignee = await storage.complete_placement(session, event.task_id, completed_at)
        if assignee:
            load.done(assignee)

    return handle
