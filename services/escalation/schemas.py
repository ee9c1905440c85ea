"""The request and response shapes of escalation's HTTP API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.escalation.domain import Measure


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
    allowed_actions: list[str] = []
    escalations: list[EscalationOut] = []


class ChangeIn(BaseModel):
    """An optional note for the audit trail, which names the signed-in staff member."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=500)


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


class ZeroReportIn(BaseModel):
    """A grid's daily report; all zero is a report too (每天零报告)."""

    model_config = ConfigDict(extra="forbid")

    grid_id: str = Field(min_length=1, max_length=64)
    day: date | None = Field(None, description="The reporting day (Asia/Shanghai); empty: today.")
    arrivals: int = Field(ge=0, le=100_000, description="New arrivals found today.")
    under_control: int = Field(ge=0, le=100_000, description="People under a measure now.")
    abnormal: int = Field(ge=0, le=100_000, description="People with a fever or symptom.")
    households_visited: int = Field(ge=0, le=1_000_000)
    found_by_cadres: int = Field(
        0, ge=0, description="Of the arrivals, those found by cadres' visits rather than feeds."
    )

    @model_validator(mode="after")
    def _found_within_arrivals(self) -> ZeroReportIn:
        if self.found_by_cadres > self.arrivals:
            raise ValueError("found_by_cadres cannot exceed arrivals")
        return self


class ZeroReportOut(BaseModel):
    """A stored daily report."""

    report_id: str
    grid_id: str
    day: str
    arrivals: int
    under_control: int
    abnormal: int
    households_visited: int
    found_by_cadres: int
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
