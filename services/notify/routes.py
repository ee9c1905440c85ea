"""Notify's HTTP routes: delivery status, for staff whose role may read it (`gridline.staff`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel

from gridline.db import Database
from gridline.problems import ProblemError
from gridline.staff.http import STAFF_RESPONSES, requires
from gridline.staff.identity import Staff
from gridline.staff.roles import Permission
from services.notify import storage

router = APIRouter(prefix="/v1", tags=["notifications"])


class AttemptOut(BaseModel):
    """One try of one channel."""

    number: int
    at: datetime
    ok: bool
    error: str


class DeliveryOut(BaseModel):
    """One channel's delivery of a notification."""

    channel: str
    group_id: str
    outcome: str
    attempts: int
    error: str
    finished_at: datetime
    attempt_log: list[AttemptOut]


@router.get(
    "/notifications/{notification_id}",
    operation_id="get_notification",
    responses={
        **STAFF_RESPONSES,
        404: {"description": "No delivery of this notification (`notification.not_found`)."},
    },
)
async def get_notification(
    notification_id: str,
    request: Request,
    _: Annotated[Staff, Depends(requires(Permission.DELIVERIES_READ))],
) -> list[DeliveryOut]:
    """Every channel's delivery of a notification, with each attempt."""
    db: Database = request.app.state.db
    async with db.session() as session:
        found = await storage.deliveries_with_attempts(session, notification_id)
    if not found:
        raise ProblemError(
            status.HTTP_404_NOT_FOUND,
            "notification.not_found",
            f"没有通知“{notification_id}”的投递记录，请核对通知编号",
        )
    return [
        DeliveryOut(
            **row.model_dump(),
            attempt_log=[
                AttemptOut(number=a.number, at=a.at, ok=a.ok, error=a.error) for a in attempts
            ],
        )
        for row, attempts in found
    ]
