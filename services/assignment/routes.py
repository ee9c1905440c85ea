"""Assignment's HTTP API: cadre duty state (leave and backup) and risk areas with history.

A change is stored with its count in `directory_version`; this replica follows it before it
answers, every other replica within `GRIDLINE_ASSIGNMENT_FOLLOW_SECONDS`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from gridline.contracts.enums import RiskName
from gridline.db import Database
from services.assignment import storage
from services.assignment.following import Follower
from services.assignment.risk import RiskArea

router = APIRouter(prefix="/v1", tags=["directory"])


class Duty(BaseModel):
    """A cadre's duty state."""

    on_leave: bool = Field(description="On leave: the cadre takes no new tasks.")
    backup_id: str | None = Field(
        default=None, description="The cadre who takes new tasks while this one is on leave."
    )


@router.put("/cadres/{person_id}/duty", operation_id="set_duty", response_model=Duty)
async def set_duty(person_id: str, duty: Duty, request: Request) -> Duty:
    """Put a cadre on leave with a backup, or back on duty; applies to the next report on
    every replica."""
    follower: Follower = request.app.state.follower
    db: Database = request.app.state.db
    directory = follower.current.directory
    if person_id not in directory.people:
        raise HTTPException(404, f"no person {person_id!r}")
    try:
        person = directory.duty_changed(person_id, on_leave=duty.on_leave, backup_id=duty.backup_id)
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    async with db.session() as session:
        await storage.save_duty(session, person)
    await follower.refresh()
    return Duty(on_leave=person.on_leave, backup_id=person.backup_id)


class RiskAreaIn(BaseModel):
    """A change of a region's risk level."""

    region_code: str = Field(
        pattern=r"^[1-8][0-9]{5}$", description="GB/T 2260 code; 310000 covers all of 31xxxx."
    )
    level: RiskName
    valid_from: AwareDatetime | None = Field(default=None, description="Empty: now.")
    valid_to: AwareDatetime | None = Field(default=None, description="Empty: until changed.")

    @model_validator(mode="after")
    def _ordered(self) -> RiskAreaIn:
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must come after valid_from")
        return self


class RiskAreaOut(BaseModel):
    """A recorded risk area change."""

    region_code: str
    level: RiskName
    valid_from: datetime
    valid_to: datetime | None
    changed_at: datetime


def _out(area: RiskArea) -> RiskAreaOut:
    return RiskAreaOut(
        region_code=area.region_code,
        level=area.level,
        valid_from=area.valid_from,
        valid_to=area.valid_to,
        changed_at=area.changed_at,
    )


@router.post(
    "/risk-areas", operation_id="change_risk_area", response_model=RiskAreaOut, status_code=201
)
async def change_risk_area(change: RiskAreaIn, request: Request) -> RiskAreaOut:
    """Record a region's new risk level; it decides the measure of reports placed from now on,
    on every replica."""
    follower: Follower = request.app.state.follower
    db: Database = request.app.state.db
    moment = datetime.now(UTC)
    area = RiskArea(
        region_code=change.region_code,
        level=change.level,
        valid_from=change.valid_from or moment,
        valid_to=change.valid_to,
        changed_at=moment,
    )
    async with db.session() as session:
        await storage.add_risk_area(session, area)
    await follower.refresh()
    return _out(area)


@router.get("/risk-areas", operation_id="list_risk_areas", response_model=list[RiskAreaOut])
async def list_risk_areas(request: Request) -> list[RiskAreaOut]:
    """The risk areas in force now (the latest change of each region)."""
    follower: Follower = request.app.state.follower
    return [_out(a) for a in follower.current.areas.current(datetime.now(UTC))]


@router.get(
    "/risk-areas/history", operation_id="risk_area_history", response_model=list[RiskAreaOut]
)
async def risk_area_history(request: Request) -> list[RiskAreaOut]:
    """Every change ever recorded, oldest first."""
    follower: Follower = request.app.state.follower
    return [_out(a) for a in follower.current.areas.history]
