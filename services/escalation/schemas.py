"""The request and response shapes of escalation's HTTP API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.escalation.domain import Measure, TestResult
from services.escalation.visits import Outcome


class EscalationOut(BaseModel):
    """An escalation raised for a task."""

    level: int
    reason: str
    group_id: str
    raised_at: datetime


class ChangeOut(BaseModel):
    """One entry of a task's audit trail."""

    version: int
    action: str
    from_state: str
    to_state: str
    actor: str
    channel: str
    note: str
    changed_at: datetime


class TaskOut(BaseModel):
    """A task as people and other systems see it (personal data masked)."""

    task_id: str
    report_id: str
    state: str
    level: int
    assignee_group_id: str
    triage: bool
    grid_id: str
    origin_risk: int
    measure: str | None
    summary: str
    deadline_at: datetime | None
    acknowledged_at: datetime | None
    verify_by: datetime | None = Field(None, description="The visit/verification deadline.")
    measure_started_at: datetime | None = None
    measure_ends_at: datetime | None = Field(None, description="When the measure runs out.")
    allowed_actions: list[str] = []
    escalations: list[EscalationOut] = []


class ChangeIn(BaseModel):
    """An optional note for the audit trail, which names the signed-in staff member."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=500)


class TestResultIn(ChangeIn):
    """A test result during the measure; a positive one moves the case to transfer."""

    result: TestResult = Field(description="negative 阴性, positive 阳性, not_taken 未检测.")
    source_id: str = Field(
        "", max_length=100, description="The source's id of the result; the same id again "
        "records nothing (a lab's sample number, a client's submission).",
    )  # fmt: skip


class TestResultOut(BaseModel):
    """A test result as recorded."""

    test_day: int = Field(description="The day of the measure it answers; 0: none was planned.")
    result: str
    actor: str
    channel: str
    recorded_at: datetime


class MeasureIn(ChangeIn):
    """Starting a control measure: which one."""

    measure: Measure


class ReassignIn(ChangeIn):
    """The new assignee, and the household when a triage task is placed."""

    group_id: str = Field(min_length=1, max_length=64)
    level: int = Field(ge=1, le=5, description="ChainLevel of the new assignee.")
    node_id: str = Field(
        "", max_length=64, description="The household, when placing a triage task."
    )


_COMPUTED = (
    "Ignored: the summaries compute it from the household visits and the reports' sources "
    "(docs/escalation.md). Still accepted so that an earlier client's report is not refused."
)


class ZeroReportIn(BaseModel):
    """A grid's daily report; all zero is a report too (每天零报告).

    The visit rate and the cadre-found share are not typed: `households_visited` and
    `found_by_cadres` are accepted from earlier clients and ignored.
    """

    model_config = ConfigDict(extra="forbid")

    grid_id: str = Field(min_length=1, max_length=64)
    day: date | None = Field(None, description="The reporting day (Asia/Shanghai); empty: today.")
    arrivals: int = Field(ge=0, le=100_000, description="New arrivals found today.")
    under_control: int = Field(ge=0, le=100_000, description="People under a measure now.")
    abnormal: int = Field(ge=0, le=100_000, description="People with a fever or symptom.")
    households_visited: int | None = Field(None, ge=0, deprecated=True, description=_COMPUTED)
    found_by_cadres: int | None = Field(None, ge=0, deprecated=True, description=_COMPUTED)


class ZeroReportOut(BaseModel):
    """A stored daily report."""

    report_id: str
    grid_id: str
    day: str
    arrivals: int
    under_control: int
    abnormal: int
    submitted_by: str
    submitted_at: datetime


class SmsCheckInIn(BaseModel):
    """An SMS reply as the gateway posts it: its message id and the text the resident sent."""

    model_config = ConfigDict(extra="forbid")

    message_id: str = Field(min_length=1, max_length=100, description="The gateway's id; dedups.")
    text: str = Field(min_length=1, max_length=500, description="e.g. `K7M2Q9XA 36.8` or `… 咳嗽`.")
    sender: str = Field(
        "",
        max_length=32,
        description="The number the reply came from: wrong codes are limited per sender.",
    )


class LinkCheckInIn(BaseModel):
    """A check-in from the task page on a phone."""

    model_config = ConfigDict(extra="forbid")

    submission_id: str = Field(min_length=1, max_length=100, description="The page's id; dedups.")
    temperature: float | None = Field(None, ge=34.0, le=43.0, description="°C")
    symptoms: list[Annotated[str, Field(max_length=20)]] = Field([], max_length=10)


class CheckInOut(BaseModel):
    """A check-in taken, and whether people were told at once."""

    check_in_id: str
    task_id: str
    temperature: float | None
    abnormal: str
    notified: int


class VisitIn(BaseModel):
    """A visit to a household (入户), recorded by the signed-in staff member."""

    model_config = ConfigDict(extra="forbid")

    household_id: str = Field(min_length=1, max_length=64, description="The Directory's household.")
    outcome: Outcome = Field(
        description="met 已见面, nobody_home 无人在家, refused 拒绝配合, moved_out 已搬离, "
        "new_arrival 发现新来返人员."
    )
    visited_at: AwareDatetime | None = Field(None, description="When; empty: now.")
    note: str = Field("", max_length=500)
    submission_id: str = Field(
        "", max_length=100, description="The client's id of the entry; a retry records it once."
    )


class VisitOut(BaseModel):
    """A visit as recorded."""

    visit_id: str
    household_id: str
    grid_id: str
    outcome: str
    outcome_label: str
    note: str
    visited_at: datetime
    visitor: str
    channel: str
    recorded_at: datetime


class VisitRoundIn(BaseModel):
    """A visit round over a grid or community (e.g. 第五轮入户排摸, 敲门行动, 每月遍访)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=100,
        description="As the notices name it, e.g. 文化苑第五轮入户排摸.",
    )
    node_id: str = Field(min_length=1, max_length=64, description="The grid or community.")
    starts_at: AwareDatetime | None = Field(None, description="Visits from then count; empty: now.")
    deadline_at: AwareDatetime


class VisitRoundOut(BaseModel):
    """A round and its coverage: households reached over households of its node."""

    round_id: str
    name: str
    node_id: str
    node_level: str
    starts_at: datetime
    deadline_at: datetime
    created_by: str
    visited: int
    households: int | None = Field(description="Empty while the Directory cannot be asked.")
    coverage: float | None
    state: str = Field(description="running, covered, or short (raised to the office above).")
    state_label: str
