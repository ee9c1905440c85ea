"""Assignment's consumer of `reports.v1`."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import events_pb2
from gridline.ids import derived_id
from gridline.timestamps import now
from services.assignment import metrics, storage
from services.assignment.directory import Directory
from services.assignment.placement import place

GROUP = "assignment.reports"


def report_handler(directory: Directory, producer: EventProducer, link_base: str) -> Handler:
    """Place each report, publish its task and the first notice, then record the placement."""

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        report = envelope.message
        if not isinstance(report, events_pb2.ReportAccepted):
            raise TypeError(f"{topics.REPORTS} carries ReportAccepted, not {envelope.schema}")
        placement = place(report, directory, now=now(), link_base=link_base)
        task = placement.task
        await producer.publish(
            topics.TASKS,
            Envelope(
                event_id=derived_id("task-event", task.task_id, "assigned"),
                key=task.household_id or task.grid_id,
                message=task,
            ),
        )
        notice = placement.notification
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
        )
        metrics.PLACEMENTS.labels("triage" if placement.triage else "household").inc()

    return handle
