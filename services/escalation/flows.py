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
from gridline.links import Role as LinkRole
from gridline.staff.identity import Forbidden, Place, Staff
from gridline.staff.roles import ROLE_ZH
from gridline.staff.roles import Role as StaffRole
from gridline.timestamps import now, to_timestamp
from services.escalation import measure_flows, metrics, replanning, storage
from services.escalation.chains import unknown_node
from services.escalation.check_ins import CheckInRules
from services.escalation.domain import (
    APPROVES_EARLY_END,
    AWAITING_ACKNOWLEDGEMENT,
    RISK_RAISE,
    TEST_RESULT_ZH,
    UNDER_MEASURE,
    Action,
    Measure,
    MeasureRequired,
    TaskState,
    TestResult,
    check_change,
    takes_risk_raise,
    transition,
)
from services.escalation.measures import FollowUp, TimerKind
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
    # A case that ends is COMPLETED whichever way (assignment frees the cadre's load on it);
    # the event's `state` says which.
    Action.RECORD_TEST: events_pb2.TASK_EVENT_KIND_TEST_RECORDED,
    Action.REQUEST_EARLY_END: events_pb2.TASK_EVENT_KIND_EARLY_END_REQUESTED,
    Action.APPROVE_EARLY_END: events_pb2.TASK_EVENT_KIND_COMPLETED,
    Action.REFUSE_EARLY_END: events_pb2.TASK_EVENT_KIND_EARLY_END_REQUESTED,
    Action.RECORD_LEFT: events_pb2.TASK_EVENT_KIND_COMPLETED,
    Action.RECORD_NOT_FOUND: events_pb2.TASK_EVENT_KIND_OUTCOME_RECORDED,
    Action.TO_HOSPITAL: events_pb2.TASK_EVENT_KIND_COMPLETED,
    Action.TO_ISOLATION: events_pb2.TASK_EVENT_KIND_COMPLETED,
}

# The chain level each staff role acts at, for the changes only a level may make (approving an
# early end); the health centre and the operator act at none.
STAFF_AUTHORITY: dict[StaffRole, int] = {
    StaffRole.CADRE: common_pb2.CHAIN_LEVEL_CADRE,
    StaffRole.LIAISON: common_pb2.CHAIN_LEVEL_LIAISON,
    StaffRole.COMMUNITY_STAFF: common_pb2.CHAIN_LEVEL_COMMUNITY,
    StaffRole.TOWNSHIP_OFFICE: common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
    StaffRole.COUNTY_OFFICE: common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
}
# As much for the roles of task-page links.
LINK_AUTHORITY: dict[LinkRole, int] = {
    LinkRole.CADRE: common_pb2.CHAIN_LEVEL_CADRE,
    LinkRole.LIAISON: common_pb2.CHAIN_LEVEL_LIAISON,
    LinkRole.COMMUNITY: common_pb2.CHAIN_LEVEL_COMMUNITY,
    LinkRole.TOWNSHIP_OFFICE: common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
    LinkRole.COUNTY_OFFICE: common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
}

# The changes only a level may make, whatever else the role may do.
_DECISIONS = frozenset({Action.APPROVE_EARLY_END, Action.REFUSE_EARLY_END})


def staff_authority(staff: Staff) -> int:
    """The chain level a staff member acts at (`STAFF_AUTHORITY`; 0: none)."""
    return STAFF_AUTHORITY.get(staff.role, 0)


def require_authority(staff: Staff, action: Action) -> None:
    """Forbidden unless the staff member's role may take `action` at its level.

    Deciding on an early end is the township office's or the county office's: a cadre or a
    community may act on tasks and ask for one, but deciding is no matter of the request's
    content, so the refusal is the role's (403), before the task is even read.
    """
    if action in _DECISIONS and staff_authority(staff) < APPROVES_EARLY_END:
        raise Forbidden(
            f"{ROLE_ZH[staff.role]}无权审批提前解除管控：须由镇联防联控办或县联防联控办审批"
        )


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
    # The chain level the actor acts at (`STAFF_AUTHORITY`, `LINK_AUTHORITY`; 0: none).
    authority: int = 0
    # For a test result: which, and the source's id of it (the same id records nothing again).
    result: TestResult | None = None
    source_id: str = ""


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
    the task and its version, and published once it commits. The follow-up moves with the task
    (`_follow_up`): with `check_ins`, starting a measure schedules its check-ins, reminders and
    tests from the task's plan; leaving the measure stops them. `guard` sees the locked task
    first and may refuse the change by raising (the caller's scope: no change is made). A
    reassignment's notice carries the new holder's link, made with `links`. A test result whose
    `source_id` was recorded before changes nothing. Raises TaskNotFound, TransitionRefused
    (naming the current state), MeasureRequired or ChangeRefused (the rule, in Chinese).
    """
    moment = clock()
    async with db.session() as session:
        task = await storage.get_task(session, task_id, for_update=True)
        if task is None:
            raise TaskNotFound(task_id)
        if guard is not None:
            guard(task)
        result_id = derived_id("test-result", task_id, change.source_id or f"v{task.version}")
        replayed = change.action is Action.RECORD_TEST and change.source_id
        if replayed and await session.get(storage.TestRecord, result_id) is not None:
            return task, list(await storage.escalations_of(session, task_id))
        before = task.state
        target = transition(task.state, change.action, change.result)
        requested_by = ""
        if change.action in _DECISIONS:
            asked = [c for c in await storage.changes_of(session, task_id)
                     if c.action == Action.REQUEST_EARLY_END]  # fmt: skip
            requested_by = asked[-1].actor if asked else ""
        check_change(
            change.action, note=change.note, authority=change.authority,
            ends_at=task.measure_ends_at, moment=moment, actor=change.actor,
            requested_by=requested_by,
        )  # fmt: skip
        task.state = target
        _apply(task, change, policy, moment)
        await _follow_up(session, task, change, before, check_ins, moment, result_id)
        _record_change(
            session, task, change.action, before, change.actor, change.channel,
            _note(change), moment,
        )  # fmt: skip
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
        if event.HasField("follow_up") and task.measure is None:
            # The new risk's plan, while no measure has started on the old one.
            task.follow_up = FollowUp.from_event(event.follow_up).encode()
        if event.decided_risk == common_pb2.RISK_LEVEL_HIGH:
            await storage.add_timers(session, [measure_flows.high_risk_timer(task.task_id, moment)])
    change = _record_change(
        session, task, RISK_RAISE, task.state, event.actor or "assignment", "system", note, moment
    )
    session.add(task)
    metrics.TASK_CHANGES.labels(RISK_RAISE).inc()
    return change


async def _follow_up(
    session: AsyncSession,
    task: storage.Task,
    change: Change,
    before: str,
    check_ins: CheckInRules | None,
    moment: datetime,
    result_id: str,
) -> None:
    """The follow-up's timers as the task moves (`measure_flows`)."""
    action = change.action
    if action is Action.ACKNOWLEDGE:
        await measure_flows.acknowledged(session, task, moment)
    elif task.state != TaskState.ACKNOWLEDGED:
        task.verify_by = None  # visited, or gone to another holder: nothing to verify by then
    if action is Action.START_MEASURE and check_ins is not None:
        await measure_flows.start(session, task, check_ins, moment)
    elif action is Action.RECORD_TEST and change.result is not None:
        await measure_flows.record_test(
            session, task, change.result, result_id=result_id, actor=change.actor,
            channel=change.channel, moment=moment,
        )  # fmt: skip
    elif action is Action.RECORD_LEFT:
        timer = measure_flows.at_once(
            task.task_id, TimerKind.LEFT, moment, note=change.note, key=str(task.version)
        )
        await storage.add_timers(session, [timer])
    elif action is Action.REQUEST_EARLY_END:
        timer = measure_flows.at_once(
            task.task_id, TimerKind.EARLY_END, moment,
            note=f"{change.actor}\n{change.note}", key=str(task.version),
        )  # fmt: skip
        await storage.add_timers(session, [timer])
    if before in UNDER_MEASURE and task.state not in UNDER_MEASURE:
        await measure_flows.stop(session, task)


def _note(change: Change) -> str:
    """The audit trail's note: a test's result comes first."""
    if change.action is Action.RECORD_TEST and change.result is not None:
        said = f"核酸检测结果：{TEST_RESULT_ZH[change.result]}"
        return f"{said}；{change.note}" if change.note else said
    return change.note


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
    kind = _EVENT_KINDS[change.action]
    if change.action is Action.RECORD_TEST and task.state == TaskState.TRANSFER:
        kind = events_pb2.TASK_EVENT_KIND_OUTCOME_RECORDED  # positive: off to transfer
    return events_pb2.TaskEvent(
        task_id=task.task_id,
        kind=kind,
        state=task.state,
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
