"""The response shapes of escalation's HTTP API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class EscalationOut(BaseModel):
    """An escalation raised for a task."""

    level: int
    reason: str
    group_id: str
    raised_at: datetime


class TaskOut(BaseModel):
    """A task as people and other systems see it (personal data masked)."""

    task_id: str
    report_id: str
    state: str
    level: int
    triage: bool
    grid_id: str
    summary: str
    deadline_at: datetime | None
    acknowledged_at: datetime | None
    escalations: list[EscalationOut] = []
