"""Assignment's consumers of `reports.v1` and `tasks.v1`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.enums import REPORT_SOURCE_NAMES, RISK_LEVELS
from gridline.contracts.v1 import events_pb2
from gridline.db import after_commit
from gridline.ids import derived_id
from gridline.links import PageLinks
from gridline.timestamps import from_timestamp, now
from services.assignment import metrics, sealed, storage
from services.assignment.assignee import CadreLoad, PendingLoad
from services.assignment.cases import (
    case_id,
    enrichment,
    holder,
    raises_risk,
    risk_raised,
    risk_raised_event_id,
)
from services.assignment.following import Current
from services.assignment.placement import place
from services.assignment.risk import Policy, decide_report

GROUP = "assignment.reports"


# The load a transaction's placements hand out, on top of the committed one until it commits.
_PENDING_LOAD = "assignment.pending_load"


def _pending_load(session: AsyncSession, load: CadreLoad) -> PendingLoad:
    pending = session.info.get(_PENDING_LOAD)
    if pending is None:
        pending = session.info[_PENDING_LOAD] = PendingLoad(load)
        after_commit(session, pending.commit)
    return pending


def _stage_notices(session: AsyncSession, notices: Sequence[events_pb2.Notification]) -> None:
    for notice in notices:
        stage(session, topics.NOTIFICATIONS, notice_envelope(notice))


async def prepare_reports(envelopes: Sequence[Envelope], session: AsyncSession) -> None:
    """Read the open cases of a batch's reports in one query instead of one each."""
    await storage.prefetch_open_cases(
        session,
        [
            case_id(envelope.message)
            for envelope in envelopes
            if isinstance(envelope.message, events_pb2.ReportAccepted)
        ],
    )


def report_handler(current: Current, links: PageLinks, load: CadreLoad, policy: Policy) -> Handler:
    """Place each report, decide its measure, stage task and notices, record the placement.

    A report of a person whose case is open joins that case instead: no task, one notice to
    the case's holder (see `cases`), and when it decides a higher risk than the case had, a
    RISK_RAISED task event for escalation to re-plan the task. The measure is decided from the
    risk areas as they stand when the report is placed, so a change of the areas applies to the
    next report and never rewrites a task already created. A record's task event is staged
    before its notices; the load grows by its task once the transaction commits. Each record
    is decided by the directory and areas `current` holds when its handling starts. The
    report's sealed ID number and phone are kept with its placement (`sealed`).
    """

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        report = envelope.message
        if not isinstance(report, events_pb2.ReportAccepted):
            raise TypeError(f"{topics.REPORTS} carries ReportAccepted, not {envelope.schema}")
        directory, areas = current.directory, current.areas
        moment = now()
        decision = decide_report(policy, areas, report, moment)
        person_case = case_id(report)
        # Assignment owns the person: every report's sealed fields stay here, a later report
        # of the case keeping its own (the phone may have changed).
        sealed.keep(session, report)
        case = await storage.open_case(session, person_case)
        if case is not None:
            if raises_risk(case, decision):
                raised = risk_raised(directory, case, report, decision=decision, now=moment)
                stage(
                    session,
                    topics.TASKS,
                    Envelope(
                        event_id=risk_raised_event_id(case, report),
                        key=raised.household_id or raised.grid_id,
                        message=raised,
                    ),
                )
            recipient = holder(directory, case)
            notice = enrichment(
                case,
                report,
                decision=decision,
                resolution=directory.locate(report.address),
                recipient=recipient,
                # The holder's own link, as of now: one issued before a later hand-over (that
                # this consumer may not have heard of yet) is refused by the page.
                link=links.link(case.task_id, recipient, holder=case.holder_group_id, at=moment),
                now=moment,
            )
            _stage_notices(session, [notice])
            storage.record_merge(
                session,
                case,
                report_id=report.report_id,
                case_id=person_case,
                risk=RISK_LEVELS[decision.risk],
            )
            metrics.REPORTS_MERGED.labels(
                REPORT_SOURCE_NAMES.get(report.source, "unspecified")
            ).inc()
            return
        pending = _pending_load(session, load)
        placement = place(
            report, directory, now=moment, links=links, decision=decision, load=pending
        )
        task = placement.task
        stage(
            session,
            topics.TASKS,
            Envelope(
                event_id=derived_id("task-event", task.task_id, "assigned"),
                key=task.household_id or task.grid_id,
                message=task,
            ),
        )
        _stage_notices(session, placement.notifications)
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
        pending.add(task.assignee.person_id)
        metrics.PLACEMENTS.labels(
            "triage" if placement.triage else "household",
            metrics.township_label(directory, placement.node_id),
        ).inc()

    return handle


TASKS_GROUP = "assignment.tasks"


# Task events after which another group holds the task: later reports of the case go there.
_HANDED_OVER = (events_pb2.TASK_EVENT_KIND_REASSIGNED, events_pb2.TASK_EVENT_KIND_SENT_TO_TRIAGE)


def tasks_accepts(envelope: Envelope) -> bool:
    """Whether `task_handler` acts on a tasks.v1 event: a hand-over to a group, a completion.

    Anything that is not a task event is taken, for the handler to refuse.
    """
    event = envelope.message
    if not isinstance(event, events_pb2.TaskEvent):
        return True
    if event.kind in _HANDED_OVER:
        return bool(event.assignee.group_id)
    return event.kind == events_pb2.TASK_EVENT_KIND_COMPLETED


def task_handler(load: CadreLoad) -> Handler:
    """Keep cadre load and case holders in step with tasks.v1: a completed task no longer
    counts as open (once its transaction commits); a reassigned one is held by its new group.
    Give it `tasks_accepts` to skip the events it ignores."""

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        event = envelope.message
        if not isinstance(event, events_pb2.TaskEvent):
            raise TypeError(f"{topics.TASKS} carries TaskEvent, not {envelope.schema}")
        if event.kind in _HANDED_OVER and event.assignee.group_id:
            await storage.hand_over(
                session, event.task_id, event.assignee.group_id, event.assignee.level,
                household_id=event.household_id, grid_id=event.grid_id,
            )  # fmt: skip
            return
        if event.kind != events_pb2.TASK_EVENT_KIND_COMPLETED:
            return
        completed_at = from_timestamp(event.occurred_at) if event.HasField("occurred_at") else now()
        assignee = await storage.complete_placement(session, event.task_id, completed_at)
        if assignee:
            after_commit(session, partial(load.done, assignee))

    return handle
