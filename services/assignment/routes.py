"""Assignment's HTTP API: cadre duty state (leave and backup) and risk areas with history.

A change is stored with its count in `directory_version`; this replica follows it before it
answers, every other replica within `GRIDLINE_ASSIGNMENT_FOLLOW_SECONDS`.

Every route is a staff route (`gridline.staff`): duty is managed for the cadres under the staff
member's node, risk areas are changed by the county office alone and read by any staff.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from gridline.contracts.enums import RiskName
from gridline.db import Database
from gridline.problems import ProblemError
from gridline.staff.http import STAFF_RESPONSES, refusing, requires
from gridline.staff.identity import Place, Staff
from gridline.staff.roles import Permission
from services.assignment import storage
from services.assignment.directory import Directory, Role
from services.assignment.following import Follower
from services.assignment.places import place_of
from services.assignment.risk import RiskArea

router = APIRouter(prefix="/v1", tags=["directory"])


class Duty(BaseModel):
    """A cadre's duty state."""

    on_leave: bool = Field(description="On leave: the cadre takes no new tasks.")
    backup_id: str | None = Field(
        default=None, description="The cadre who takes new tasks while this one is on leave."
    )


RiskReader = Annotated[Staff, Depends(requires(Permission.RISK_AREAS_READ))]


def _check_cadre_in_scope(staff: Staff, directory: Directory, person_id: str, what: str) -> None:
    """Forbidden unless every grid the cadre serves is under the staff member's node (a person
    serving none: only the county office)."""
    grids = directory.cadre_grids().get(person_id, [])
    for place in [place_of(directory, grid) for grid in grids] or [Place()]:
        staff.require_scope(place, what)


@router.put(
    "/cadres/{person_id}/duty",
    operation_id="set_duty",
    response_model=Duty,
    responses={
        **STAFF_RESPONSES,
        404: {"description": "No such person (`person.not_found`)."},
        422: {"description": "Among the fields' rules `duty.not_a_cadre`, `duty.backup_invalid`."},
    },
)
async def set_duty(
    person_id: str,
    duty: Duty,
    request: Request,
    staff: Annotated[Staff, Depends(requires(Permission.DUTY_MANAGE))],
) -> Duty:
    """Put a cadre on leave with a backup, or back on duty; applies to the next report on
    every replica. Both cadres must serve grids under the staff member's node."""
    follower: Follower = request.app.state.follower
    db: Database = request.app.state.db
    directory = follower.current.directory
    if person_id not in directory.people:
        raise ProblemError(
            404, "person.not_found", f"目录中没有编号为“{person_id}”的人员，请核对人员编号"
        )
    with refusing():
        _check_cadre_in_scope(staff, directory, person_id, "该包户干部")
        if duty.backup_id is not None and duty.backup_id in directory.people:
            _check_cadre_in_scope(staff, directory, duty.backup_id, "顶岗的包户干部")
    try:
        person = directory.duty_changed(person_id, on_leave=duty.on_leave, backup_id=duty.backup_id)
    except ValueError as error:
        raise _duty_refused(directory, person_id, duty.backup_id) from error
    async with db.session() as session:
        await storage.save_duty(session, person)
    await follower.refresh()
    return Duty(on_leave=person.on_leave, backup_id=person.backup_id)


def _duty_refused(
    directory: Directory, person_id: str, backup_id: str | None
) -> RequestValidationError:
    """Why `Directory.duty_changed` refused, as the field at fault: the person is no cadre, or
    the backup is not another cadre."""
    if directory.people[person_id].role is not Role.CADRE:
        loc, rule = ("path", "person_id"), "duty.not_a_cadre"
        msg = f"“{person_id}”不是包户干部，只有包户干部有请假和顶岗"
    else:
        loc, rule = ("body", "backup_id"), "duty.backup_invalid"
        msg = f"顶岗人员“{backup_id}”须是另一名包户干部"
    return RequestValidationError([{"loc": loc, "type": rule, "msg": msg}])


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
    "/risk-areas",
    operation_id="change_risk_area",
    response_model=RiskAreaOut,
    status_code=201,
    responses=STAFF_RESPONSES,
)
async def change_risk_area(
    change: RiskAreaIn,
    request: Request,
    _: Annotated[Staff, Depends(requires(Permission.RISK_AREAS_CHANGE))],
) -> RiskAreaOut:
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


@router.get(
    "/risk-areas",
    operation_id="list_risk_areas",
    response_model=list[RiskAreaOut],
    responses=STAFF_RESPONSES,
)
async def list_risk_areas(request: Request, _: RiskReader) -> list[RiskAreaOut]:
    """The risk areas in force now (the latest change of each region)."""
    follower: Follower = request.app.state.follower
    return [_out(a) for a in follower.current.areas.current(datetime.now(UTC))]


@router.get(
    "/risk-areas/history",
    operation_id="risk_area_history",
    response_model=list[RiskAreaOut],
    responses=STAFF_RESPONSES,
)
async def risk_area_history(request: Request, _: RiskReader) -> list[RiskAreaOut]:
    """Every change ever recorded, oldest first."""
    follower: Follower = request.app.state.follower
    return [_out(a) for a in follower.current.areas.history]
