"""Escalation's actions on tasks, shared by the HTTP routes, the task page and the gRPC servicer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import grpc
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.envelope import Envelope, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.enums import CHAIN_LEVEL_ZH, RISK_ZH, chain_level, risk_level
from gridline.contracts.notices import TaskRef, build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.ids import derived_id
from gridline.links import PageLinks, notice_link
from gridline.staff.identity import Place
from gridline.timestamps import now, to_timestamp
from services.escalation import check_in_flows, metrics, replanning, storage
from services.escalation.chains import unknown_node
from services.escalation.check_ins import CheckInRules
from services.escalation.domain import (
    AWAITING_ACKNOWLEDGEMENT,
    RISK_RAISE,
    Action,
    Measure,
    MeasureRequired,
    TaskState,
    takes_risk_raise,
    transition,
)
from services.escalation.policy import DeadlinePolicy

Clock = Callable[[], datetime]

_EVENT_KINDS = {
    Action.ACKNOWLEDGE: events_pb2.TASK_EVENT_KIND_ACKNOWLEDGED,
    Action.RECORD_VISIT: events_pb2.TASK_EVENT_KIND_VISITED,
    Action.START_MEASURE: events_pb2.TASK_EVENT_KIND_MEASURE_STARTED,
    Action.END_MEASURE: events_pb2.TASK_EVENT_KIND_COMPLETED,
    Action.CLOSE: events_pb2.TASK_EVENT_KIND_COMPLETED,
    Action.SEND_TO_TRIAGE: events_pb2.TASK_EVENT_KIND_SENT_TO_TRIAGE,
    Action.REASSIGN: events_pb2.TASK_EVENT_KIND_REASSIGNED,
}


class TaskNotFound(Exception):
    """No task has this id."""


class NodeUnknown(ValueError):
    """A reassignment names a node the Directory does not have (rule `NODE_UNKNOWN`)."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"目录中没有编号为“{node_id}”的户、网格或社区，不能改派到该处；请核对编号")
        self.node_id = node_id


# The stable name clients match a NodeUnknown refusal by (HTTP `type`, gRPC details prefix).
NODE_UNKNOWN = "node_id.unknown"


# Where a node sits, asked of the Directory (`DirectoryClient.place`): grpc NOT_FOUND for a
# node it lacks.
PlaceLookup = Callable[[str], Awaitable[Place]]


async def locate(place_of: PlaceLookup, node_id: str) -> Place:
    """Where `node_id` sits; NodeUnknown unless the Directory knows it.

    Asked before a reassignment, with no transaction open: a task held at a node the Directory
    does not know could never go up the chain, and the place decides who may see the task
    next. Any other failure of the lookup (the Directory unreachable) is raised as it is.
    """
    try:
        return await place_of(node_id)
    except grpc.aio.AioRpcError as error:
        if unknown_node(error):
            raise NodeUnknown(node_id) from error
        raise


@dataclass(frozen=True)
class Change:
    """What someone asks to do to a task, and who, through what."""

    action: Action
    actor: str
    channel: str
    note: str = ""
    measure: Measure | None = None
    # For reassignment: the new assignee and, when a triage task is placed, its household
    # and where that sits (the Directory's answer), which becomes the task's place.
    assignee: common_pb2.Responsible | None = None
    node_id: str = ""
    place: Place | None = None


async def change_task(
    db: Database,
    policy: DeadlinePolicy,
    task_id: str,
    change: Change,
    clock: Clock = now,
    check_ins: CheckInRules | None = None,
    guard: Callable[[storage.Task], None] | None = None,
    links: PageLinks | None = None,
) -> tuple[storage.Task, list[storage.Escalation]]:
    """Apply one change under a row lock, record it in the audit trail and publish it.

    The event is staged in the outbox in the change's own transaction, with an id derived from
    the task and its version, and published once it commits. With `check_ins`, starting a
    measure schedules its check-ins and ending it cancels them. `guard` sees the locked task
    first and may refuse the change by raising (the caller's scope: no change is made). A
    reassignment's notice carries the new holder's link, made with `links`. Raises
    TaskNotFound, TransitionRefused (naming the current state) or MeasureRequired.
    """
    moment = clock()
    async with db.session() as session:
        task = await storage.get_task(session, task_id, for_update=True)
        if task is None:
            raise TaskNotFound(task_id)
        if guard is not None:
            guard(task)
        before = task.state
        task.state = transition(task.state, change.action)
        _apply(task, change, policy, moment)
        if check_ins is not None and change.action is Action.START_MEASURE:
            await check_in_flows.schedule(session, task, check_ins, moment)
        elif change.action is Action.END_MEASURE:
            await check_in_flows.cancel(session, task)
        _record_change(
            session, task, change.action, before, change.actor, change.channel, change.note, moment
        )
        event_id = derived_id("task-event", task.task_id, str(task.version))
        stage(
            session,
            topics.TASKS,
            Envelope(event_id=event_id, key=task.node_id, message=_event(task, change, moment)),
        )
        if change.action is Action.REASSIGN and change.assignee is not None:
            notice = _assigned_notice(task, change.assignee, moment, links)
            stage(session, topics.NOTIFICATIONS, notice_envelope(notice))
        session.add(task)
        escalations = list(await storage.escalations_of(session, task_id))
    metrics.TASK_CHANGES.labels(change.action.value).inc()
    return task, escalations


async def raise_risk(
    session: AsyncSession,
    policy: DeadlinePolicy,
    event: events_pb2.TaskEvent,
    moment: datetime,
) -> storage.TaskChange:
    """Apply a later report's higher risk (a RISK_RAISED event) to its task, in the audit trail.

    The task takes the new risk and measure and its deadlines ahead are re-planned
    (`replanning`): when the new risk goes up at once, its immediate step is due now and the
    deadline watcher raises it as for a new high-risk task. The state is kept. A closed task is
    not reopened and a risk not above the task's changes nothing: both are only noted. Runs in
    the consumer's transaction; raises TaskNotFound for a task never stored (the record is
    retried, then dead-lettered for replay) and ValueError for an event without a known risk.
    """
    if event.decided_risk not in RISK_ZH:
        raise ValueError(f"RISK_RAISED of task {event.task_id!r} carries no decided_risk")
    task = await storage.get_task(session, event.task_id, for_update=True)
    if task is None:
        raise TaskNotFound(event.task_id)
    applies = takes_risk_raise(task.state) and replanning.raises(
        task.origin_risk, event.decided_risk
    )
    note = _raise_note(task, event, applies)
    if applies:
        plan = replanning.replan(
            replanning.plan_of(policy, task),
            task.step,
            policy.steps(event.decided_risk),
            since=moment - task.assigned_at,
            awaiting=task.state in AWAITING_ACKNOWLEDGEMENT,
        )
        task.plan = replanning.encode(plan)
        task.deadline_at = replanning.due_at(plan, task.step, task.assigned_at)
        task.origin_risk = event.decided_risk
        task.measure_id, task.measure_name = event.measure_id[:64], event.measure_name[:100]
    change = _record_change(
        session, task, RISK_RAISE, task.state, event.actor or "assignment", "system", note, moment
    )
    session.add(task)
    metrics.TASK_CHANGES.labels(RISK_RAISE).inc()
    return change


def _record_change(
    session: AsyncSession,
    task: storage.Task,
    action: str,
    from_state: str,
    actor: str,
    channel: str,
    note: str,
    moment: datetime,
) -> storage.TaskChange:
    # Every change is a new version of the task and one row of its audit trail, with an id
    # derived from the version so that a replay writes the same row.
    task.version += 1
    change = storage.TaskChange(
        change_id=derived_id("task-change", task.task_id, str(task.version)),
        task_id=task.task_id,
        version=task.version,
        action=action,
        from_state=from_state,
        to_state=task.state,
        actor=actor[:100],
        channel=channel,
        note=note[:500],
        changed_at=moment,
    )
    session.add(change)
    return change


def _raise_note(task: storage.Task, event: events_pb2.TaskEvent, applies: bool) -> str:
    new = RISK_ZH[event.decided_risk]
    report = event.raised_by_report_id or event.report_id
    said = f"报告{report}显示{new}风险（{event.measure_name}）"
    if task.state == TaskState.CLOSED:
        return f"{said}；任务已办结，不重新打开"
    old = RISK_ZH.get(task.origin_risk, "未定")
    if not applies:
        return f"{said}，不高于当前的{old}风险，任务不变"
    # Only a task still awaiting acknowledgement has deadlines to re-plan.
    replanned = f"，时限按{new}风险重排" if task.state in AWAITING_ACKNOWLEDGEMENT else ""
    return f"{said}：风险由{old}升为{new}，措施改为{event.measure_name}{replanned}"


def _apply(task: storage.Task, change: Change, policy: DeadlinePolicy, moment: datetime) -> None:
    if change.action is Action.ACKNOWLEDGE:
        task.acknowledged_at = moment
        first = replanning.first_deadline(replanning.plan_of(policy, task), task.assigned_at)
        on_time = first is None or moment <= first
        metrics.ACKNOWLEDGEMENTS.labels("on_time" if on_time else "late").inc()
    elif change.action is Action.START_MEASURE:
        if change.measure is None:
            raise MeasureRequired("starting a measure needs its kind: quarantine or monitoring")
        task.measure = change.measure
    elif change.action is Action.REASSIGN:
        if change.assignee is None or not change.assignee.group_id:
            raise ValueError("reassignment needs the new assignee's group")
        task.assignee_group_id = change.assignee.group_id
        task.assignee_level = task.level = change.assignee.level
        task.node_id = change.node_id or task.node_id
        if change.node_id and change.place is not None:
            place = change.place
            # As assignment places a report: the grid, else the community, else the node.
            task.grid_id = place.grid_id or place.community_id or change.node_id
            task.community_id, task.township_id = place.community_id, place.township_id
        task.acknowledged_at = None
    if task.state in AWAITING_ACKNOWLEDGEMENT and change.action in (
        Action.REASSIGN,
        Action.SEND_TO_TRIAGE,
    ):
        # A new holder: the policy's plan of its (possibly raised) risk starts again from now,
        # immediate steps included, and the links issued before are void (`gridline.links`).
        task.handed_over_at = moment
        task.assigned_at = moment
        task.step = 0
        task.plan = None
        task.deadline_at = policy.deadline(task.origin_risk, 0, moment)
    elif task.state not in AWAITING_ACKNOWLEDGEMENT:
        # The task moved on: its pending deadline is cancelled.
        task.deadline_at = None


def _event(task: storage.Task, change: Change, moment: datetime) -> events_pb2.TaskEvent:
    return events_pb2.TaskEvent(
        task_id=task.task_id,
        kind=_EVENT_KINDS[change.action],
        report_id=task.report_id,
        household_id="" if task.triage else task.node_id,
        grid_id=task.grid_id,
        triage=task.triage,
        assignee=common_pb2.Responsible(
            level=chain_level(task.assignee_level), group_id=task.assignee_group_id
        ),
        origin_risk=risk_level(task.origin_risk),
        summary=task.summary,
        accepted_at=to_timestamp(task.report_accepted_at),
        occurred_at=to_timestamp(moment),
        actor=change.actor,
    )


def _assigned_notice(
    task: storage.Task,
    assignee: common_pb2.Responsible,
    moment: datetime,
    links: PageLinks | None,
) -> events_pb2.Notification:
    level = CHAIN_LEVEL_ZH.get(assignee.level, "")
    # Issued at the hand-over's own moment: the first link of the new holding.
    link = notice_link(links, task.task_id, assignee, holder=task.assignee_group_id, at=moment)
    return build_notice(
        derived_id("notice", task.task_id, "reassigned", str(task.version)),
        events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
        assignee,
        title="改派任务：请核查来返人员",
        body=f"{task.summary}。任务已改派给{level}，请及时确认接收。",
        at=moment,
        about=TaskRef(task.task_id, task.report_id, link, task.report_accepted_at),
    )
