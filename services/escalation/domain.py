"""Escalation's rules: the task lifecycle, the next level of the chain, what an escalation says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gridline.contracts.enums import CHAIN_LEVEL_ZH
from gridline.contracts.notices import build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.ids import derived_id
from gridline.timestamps import to_timestamp, zh_time


class TaskState(StrEnum):
    """Where a task is in its life."""

    TRIAGE = "triage"  # the address matched no household: the community places it
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    VISITED = "visited"
    UNDER_CONTROL = "under_control"  # home quarantine or home health monitoring
    # Under the measure still, while the township office decides on ending it early.
    END_REQUESTED = "end_requested"
    # A positive test: waiting to be moved to hospital or central isolation, never home.
    TRANSFER = "transfer"
    CLOSED = "closed"  # completed: the measure ran out, or none was needed
    # The other ways a case ends.
    LEFT = "left"  # left again, for the destination in the audit trail
    NOT_FOUND = "not_found"  # nobody of that name at the address
    HOSPITAL = "hospital"
    ISOLATION = "isolation"  # central isolation (集中隔离)


class Action(StrEnum):
    """What people (or other systems) do to a task."""

    ACKNOWLEDGE = "acknowledge"
    RECORD_VISIT = "record_visit"
    START_MEASURE = "start_measure"
    END_MEASURE = "end_measure"
    CLOSE = "close"
    SEND_TO_TRIAGE = "send_to_triage"
    REASSIGN = "reassign"
    RECORD_TEST = "record_test"
    REQUEST_EARLY_END = "request_early_end"
    APPROVE_EARLY_END = "approve_early_end"
    REFUSE_EARLY_END = "refuse_early_end"
    RECORD_LEFT = "record_left"
    RECORD_NOT_FOUND = "record_not_found"
    TO_HOSPITAL = "to_hospital"
    TO_ISOLATION = "to_isolation"


class Measure(StrEnum):
    """The control measure a person is under."""

    QUARANTINE = "quarantine"
    MONITORING = "monitoring"


MEASURE_ZH = {Measure.QUARANTINE: "居家隔离", Measure.MONITORING: "居家健康监测"}


class TestResult(StrEnum):
    """A test's result as recorded."""

    __test__ = False  # pytest: a domain enum, not a test class (a dunder is no enum member)

    NEGATIVE = "negative"
    POSITIVE = "positive"
    NOT_TAKEN = "not_taken"


TEST_RESULT_ZH = {
    TestResult.NEGATIVE: "阴性",
    TestResult.POSITIVE: "阳性",
    TestResult.NOT_TAKEN: "未检测",
}

# The states in which a person is under a measure: check-ins and tests are due.
UNDER_MEASURE = frozenset({TaskState.UNDER_CONTROL, TaskState.END_REQUESTED})
# The states a case ends in; none is ever reopened.
ENDED = frozenset({TaskState.CLOSED, TaskState.LEFT, TaskState.HOSPITAL, TaskState.ISOLATION})
# Where a person was seen and is followed, until the case ends.
_FOLLOWED = frozenset({TaskState.VISITED, *UNDER_MEASURE})


# Which states each action is allowed from, and where it leads.
TRANSITIONS: dict[Action, tuple[frozenset[TaskState], TaskState]] = {
    Action.ACKNOWLEDGE: (frozenset({TaskState.ASSIGNED}), TaskState.ACKNOWLEDGED),
    Action.RECORD_VISIT: (frozenset({TaskState.ACKNOWLEDGED}), TaskState.VISITED),
    Action.START_MEASURE: (frozenset({TaskState.VISITED}), TaskState.UNDER_CONTROL),
    # Only once the measure ran out (`check_change`); before, it is asked for and approved.
    Action.END_MEASURE: (frozenset({TaskState.UNDER_CONTROL}), TaskState.CLOSED),
    # Visited and no measure needed, or a triage task that was no arrival at all.
    Action.CLOSE: (frozenset({TaskState.VISITED, TaskState.TRIAGE}), TaskState.CLOSED),
    # The cadre found the address is not in their care: back to the community.
    Action.SEND_TO_TRIAGE: (
        frozenset({TaskState.ASSIGNED, TaskState.ACKNOWLEDGED}),
        TaskState.TRIAGE,
    ),
    # Not found at the address: the community may place the person elsewhere.
    Action.REASSIGN: (
        frozenset(
            {TaskState.TRIAGE, TaskState.ASSIGNED, TaskState.ACKNOWLEDGED, TaskState.NOT_FOUND}
        ),
        TaskState.ASSIGNED,
    ),
    # A measure ends early only when asked for with a reason and approved (`check_change`).
    Action.REQUEST_EARLY_END: (frozenset({TaskState.UNDER_CONTROL}), TaskState.END_REQUESTED),
    Action.APPROVE_EARLY_END: (frozenset({TaskState.END_REQUESTED}), TaskState.CLOSED),
    Action.REFUSE_EARLY_END: (frozenset({TaskState.END_REQUESTED}), TaskState.UNDER_CONTROL),
    # A positive result moves the case to transfer (`after_test`); other results keep the state.
    # A person with a test before or without a measure is tested too: a positive one goes up.
    Action.RECORD_TEST: (frozenset({TaskState.ACKNOWLEDGED, *_FOLLOWED}), TaskState.TRANSFER),
    Action.RECORD_LEFT: (frozenset({TaskState.ACKNOWLEDGED, *_FOLLOWED}), TaskState.LEFT),
    Action.RECORD_NOT_FOUND: (frozenset({TaskState.ACKNOWLEDGED}), TaskState.NOT_FOUND),
    Action.TO_HOSPITAL: (frozenset({*_FOLLOWED, TaskState.TRANSFER}), TaskState.HOSPITAL),
    Action.TO_ISOLATION: (frozenset({*_FOLLOWED, TaskState.TRANSFER}), TaskState.ISOLATION),
}

# States in which nobody has taken the task yet: its acknowledgement deadline runs.
AWAITING_ACKNOWLEDGEMENT = frozenset({TaskState.TRIAGE, TaskState.ASSIGNED})

# A later report of the person raising the task's risk is nobody's action on the task: it moves
# no state and is offered by no page, so it is no Action. It is a row of the audit trail.
RISK_RAISE = "raise_risk"


def takes_risk_raise(state: str) -> bool:
    """Whether a raised risk changes a task in this state: any but an ended one (never
    reopened)."""
    return state not in ENDED


ACTION_LABELS = {
    Action.ACKNOWLEDGE: "确认接收",
    Action.RECORD_VISIT: "记录入户核查",
    Action.START_MEASURE: "开始管控措施",
    Action.END_MEASURE: "解除管控措施",
    Action.CLOSE: "办结",
    Action.SEND_TO_TRIAGE: "退回社区分拣",
    Action.REASSIGN: "改派",
    Action.RECORD_TEST: "登记核酸检测结果",
    Action.REQUEST_EARLY_END: "申请提前解除管控",
    Action.APPROVE_EARLY_END: "批准提前解除管控",
    Action.REFUSE_EARLY_END: "不予提前解除管控",
    Action.RECORD_LEFT: "登记再次外出",
    Action.RECORD_NOT_FOUND: "登记查无此人",
    Action.TO_HOSPITAL: "登记已转运至医院",
    Action.TO_ISOLATION: "登记已转集中隔离",
}

# Looked up by a stored task's state, which is the plain string of its TaskState.
STATE_LABELS: dict[str, str] = {
    TaskState.TRIAGE: "待分拣",
    TaskState.ASSIGNED: "待接收",
    TaskState.ACKNOWLEDGED: "已接收",
    TaskState.VISITED: "已入户核查",
    TaskState.UNDER_CONTROL: "管控中",
    TaskState.END_REQUESTED: "提前解除待批准",
    TaskState.TRANSFER: "检测阳性，待转运",
    TaskState.CLOSED: "已办结",
    TaskState.LEFT: "已再次外出",
    TaskState.NOT_FOUND: "查无此人",
    TaskState.HOSPITAL: "已转运至医院",
    TaskState.ISOLATION: "已转集中隔离",
}


class TransitionRefused(Exception):
    """A change the task's current state does not allow."""

    def __init__(self, action: str, state: str) -> None:
        super().__init__(f"cannot {action} a task that is {state}")
        self.action = action
        self.state = state


class MeasureRequired(ValueError):
    """Starting a measure needs its kind: quarantine or monitoring."""


class ChangeRefused(ValueError):
    """A change the task's rules do not allow as given (a reason missing, a measure not over,
    a level too low); the message says why, in Chinese."""


def transition(state: str, action: Action, result: TestResult | None = None) -> TaskState:
    """The state after `action`, or TransitionRefused naming the current state.

    A test result keeps the state unless it is positive (`after_test`).
    """
    allowed_from, target = TRANSITIONS[action]
    if state not in allowed_from:
        raise TransitionRefused(action.value, state)
    if action is Action.RECORD_TEST:
        return after_test(TaskState(state), result)
    return target


def after_test(state: TaskState, result: TestResult | None) -> TaskState:
    """Where a case goes with a test result: a positive one to transfer, for hospital or
    central isolation, never home quarantine; any other stays."""
    if result is None:
        raise ChangeRefused("登记检测结果须注明结果：阴性、阳性或未检测")
    return TaskState.TRANSFER if result is TestResult.POSITIVE else state


# Who may approve or refuse ending a measure early: the township office or above.
APPROVES_EARLY_END = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
# The actions whose note is what the action is about: it may not be left out.
NOTE_REQUIRED = {
    Action.REQUEST_EARLY_END: "申请提前解除管控须说明理由",
    Action.RECORD_LEFT: "登记再次外出须注明去向（目的地）",
}


def check_change(
    action: Action,
    *,
    note: str,
    authority: int,
    ends_at: datetime | None,
    moment: datetime,
    actor: str = "",
    requested_by: str = "",
) -> None:
    """ChangeRefused unless the change may be made as given.

    `authority` is the chain level the actor acts at (0: none, e.g. a system); `ends_at` is the
    end of the task's measure. A measure is ended before its end only on a request with a
    reason that the township office or above approves, and never by who asked for it
    (`requested_by`, the request's actor): an office asking is confirmed by another person.
    """
    if action in NOTE_REQUIRED and not note.strip():
        raise ChangeRefused(NOTE_REQUIRED[action])
    if action is Action.END_MEASURE and ends_at is not None and moment < ends_at:
        raise ChangeRefused(
            f"管控期至{zh_time(ends_at)}，尚未期满；提前解除须说明理由，经镇联防联控办或县联防联控办批准"
        )
    if action in (Action.APPROVE_EARLY_END, Action.REFUSE_EARLY_END) and (
        authority < APPROVES_EARLY_END
    ):
        raise ChangeRefused("提前解除管控须由镇联防联控办或县联防联控办审批")
    if action is Action.APPROVE_EARLY_END and requested_by and requested_by == actor:
        raise ChangeRefused("本人提出的提前解除申请须由另一位镇联防联控办或县联防联控办人员审批")


def allowed_actions(state: str, *, authority: int | None = None) -> list[Action]:
    """The actions the current state allows, in lifecycle order; with `authority` (the chain
    level of who asks), only those that level may take."""
    found = [action for action, (sources, _) in TRANSITIONS.items() if state in sources]
    if authority is not None and authority < APPROVES_EARLY_END:
        found = [a for a in found if a not in (Action.APPROVE_EARLY_END, Action.REFUSE_EARLY_END)]
    return found


def acknowledge(state: str) -> TaskState:
    """The state after an acknowledgement, or TransitionRefused naming the current state."""
    return transition(state, Action.ACKNOWLEDGE)


def next_level(
    chain: list[common_pb2.Responsible], current: int
) -> tuple[common_pb2.Responsible, bool] | None:
    """The first level above `current` and whether any level remains above it."""
    above = [r for r in chain if r.level > current]
    if not above:
        return None
    return above[0], len(above) > 1


@dataclass(frozen=True)
class OverdueTask:
    """What escalation needs to know of a task that missed its deadline."""

    task_id: str
    report_id: str
    grid_id: str
    level: int  # the level the task was assigned to
    summary: str
    link: str
    report_accepted_at: datetime


HIGH_RISK_REASON = "高风险地区来返人员，立即上报"


def overdue_reason(assignee_level: int) -> str:
    """Why a task went up at a deadline: its assignee did not acknowledge it in time."""
    return f"{CHAIN_LEVEL_ZH.get(assignee_level, '上一级')}未在时限内确认接收"


def recipients_for(
    chain: list[common_pb2.Responsible], levels: tuple[int, ...], assignee_level: int
) -> list[common_pb2.Responsible]:
    """The chain's responsibles at `levels` above the assignee; absent levels are skipped."""
    return [r for r in chain if r.level in levels and r.level > assignee_level]


def escalation_for(
    task: OverdueTask,
    recipient: common_pb2.Responsible,
    now: datetime,
    *,
    reason: str | None = None,
    round_key: str = "",
    deferrable: bool = False,
) -> tuple[events_pb2.EscalationRaised, events_pb2.Notification]:
    """The escalation event and its notice.

    Ids derive from the task, the assignment round (`round_key`) and the recipient's level, so a
    replay yields the same ids and a reassigned task can go up again. A `deferrable` notice may
    wait for an office's morning (gridline.contracts.notices).
    """
    reason = reason or overdue_reason(task.level)
    parts = (task.task_id, round_key, str(recipient.level)) if round_key else (
        task.task_id, str(recipient.level)
    )  # fmt: skip
    escalation = events_pb2.EscalationRaised(
        escalation_id=derived_id("escalation", *parts),
        task_id=task.task_id,
        level=recipient.level,
        reason=reason,
        grid_id=task.grid_id,
        recipient=recipient,
        raised_at=to_timestamp(now),
    )
    notice = build_notice(
        derived_id("notice", *parts[:-1], "escalated", recipient.group_id),
        events_pb2.NOTIFICATION_KIND_ESCALATION,
        recipient,
        # The reason says what happened (late, high risk): no word of lateness beside high risk.
        title=reason,
        body=f"{task.summary}。{reason}，"
        + (
            f"请{CHAIN_LEVEL_ZH.get(recipient.level, '')}知悉并督促落实管控。"
            if reason == HIGH_RISK_REASON
            else f"请{CHAIN_LEVEL_ZH.get(recipient.level, '')}督促处置。"
        ),
        at=now,
        about=task,
        deferrable=deferrable,
    )
    return escalation, notice
