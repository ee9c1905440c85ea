"""Assignment's consumer of `reports.v1`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope
from gridline.bus.producer import BrokerUnavailable, EventProducer
from gridline.contracts.v1 import events_pb2
from gridline.ids import derived_id
from gridline.links import PageLinks
from gridline.timestamps import now
from services.assignment import metrics, storage
from services.assignment.assignee import CadreLoad
from services.assignment.cases import (
    case_id,
    enrichment,
    holder,
    raises_risk,
    risk_raised,
    risk_raised_event_id,
)
from services.assignment.directory import Directory
from services.assignment.placement import place
from services.assignment.risk import RISK_LEVELS, SOURCES, Policy, RiskAreas, decide

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

    A report of a person whose case is open joins that case instead: no task, one notice to
    the case's holder (see `cases`), and when it decides a higher risk than the case had, a
    RISK_RAISED task event for escalation to re-plan the task. The measure is decided from the
    risk areas as they stand when the report is placed, so a change of the areas applies to the
    next report and never rewrites a task already created.
    """

    async def publish_notices(notices: Sequence[events_pb2.Notification]) -> None:
        envelopes = [
            Envelope(event_id=n.notification_id, key=n.recipient.group_id, message=n)
            for n in notices
        ]
        if not all(await producer.publish_many(topics.NOTIFICATIONS, envelopes)):
            raise BrokerUnavailable(f"broker did not confirm the notices on {topics.NOTIFICATIONS}")

    async def publish(task: Envelope | None, notices: Sequence[events_pb2.Notification]) -> None:
        # All of a record's events are handed to the producer in one turn of the loop, task
        # event first, and confirmed together: one request to the broker instead of a round
        # trip each. Each topic keeps the order the events are given in.
        if task is None:
            await publish_notices(notices)
            return
        await asyncio.gather(producer.publish(topics.TASKS, task), publish_notices(notices))

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
        person_case = case_id(report)
        case = await storage.open_case(session, person_case)
        if case is not None:
            raised_event: Envelope | None = None
            if raises_risk(case, decision):
                raised = risk_raised(directory, case, report, decision=decision, now=moment)
                raised_event = Envelope(
                    event_id=risk_raised_event_id(case, report),
                    key=raised.household_id or raised.grid_id,
                    message=raised,
                )
            notice = enrichment(
                case,
                report,
                decision=decision,
                resolution=directory.locate(report.address),
                recipient=holder(directory, case),
                link=links.link(case.task_id, moment),
                now=moment,
            )
            await publish(raised_event, [notice])
            storage.record_merge(
                session,
                case,
                report_id=report.report_id,
                case_id=person_case,
                risk=RISK_LEVELS[decision.risk],
            )
            metrics.REPORTS_MERGED.labels(SOURCES.get(report.source, "unspecified")).inc()
            return
        placement = place(report, directory, now=moment, links=links, decision=decision, load=load)
        task = placement.task
        await publish(
            Envelope(
                event_id=derived_id("task-event", task.task_id, "assigned"),
                key=task.household_id or task.grid_id,
                message=task,
            ),
            placement.notifications,
        )
        storage.record_placement(
            session,
            report_id=report.report_id,
            task_id=task.task_id,
            case_id=person_case,
            node_id=placement.node_id,
            grid_id=task.grid_id,
            triage=placement.triage,
            assignee_id=task.assignee.person_id,
            holder_group_id=task.assignee.group_id,
            holder_level=task.assignee.level,
            risk=task.decided_risk,
            measure_id=decision.measure_id,
            policy_version=decision.policy_version,
        )
        load.add(task.assignee.person_id)
        metrics.PLACEMENTS.labels("triage" if placement.triage else "household").inc()

    return handle


TASKS_GROUP = "assignment.tasks"


# Task events after which another group holds the task: later reports of the case go there.
_HANDED_OVER = (events_pb2.TASK_EVENT_KIND_REASSIGNED, events_pb2.TASK_EVENT_KIND_SENT_TO_TRIAGE)


def task_handler(load: CadreLoad) -> Handler:
    """Keep cadre load and case holders in step with tasks.v1: a completed task no longer
    counts as open; a reassigned one is held by its new group."""

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        event = envelope.message
        if not isinstance(event, events_pb2.TaskEvent):
            raise TypeError(f"{topics.TASKS} carries TaskEvent, not {envelope.schema}")
        if event.kind in _HANDED_OVER and event.assignee.group_id:
            await storage.hand_over(
                session, event.task_id, event.assignee.group_id, event.assignee.level
            )
            return
        if event.kind != events_pb2.TASK_EVENT_KIND_COMPLETED:
            return
        completed_at = (
            event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else now()
        )
        assignee = await storage.complete_placement(session, event.task_id, completed_at)
        if assignee:
            load.done(assignee)

    return handle
