"""Escalation's HTTP routes for household visits and visit rounds.

Staff routes, as the task routes: the role's permission is checked first (recording a visit
takes `tasks.act`, reading `tasks.read`), then the household or node must lie under the staff
member's node (403 `staff.out_of_scope`); rounds are opened by community staff and the offices
above. Visits name the person who recorded them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from gridline.staff.http import STAFF_RESPONSES, forbidden, requires
from gridline.staff.identity import Forbidden, Place, Staff
from gridline.staff.roles import Permission
from gridline.timestamps import SHANGHAI, now
from services.escalation import storage, visit_flows
from services.escalation.routes import directory_down
from services.escalation.schemas import VisitIn, VisitOut, VisitRoundIn, VisitRoundOut
from services.escalation.visits import (
    OUTCOME_ZH,
    Outcome,
    VisitRefused,
    check_runs_rounds,
    coverage,
)

router = APIRouter(prefix="/v1", tags=["visits"])

Recorder = Annotated[Staff, Depends(requires(Permission.TASKS_ACT))]
Reader = Annotated[Staff, Depends(requires(Permission.TASKS_READ))]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **STAFF_RESPONSES,
    422: {
        "description": "A field's rule (`visit.refused`: no such household, a time that "
        "cannot be, a node that is no grid or community)."
    },
    503: {"description": "The Directory could not be asked where the household or node is."},
}

_STATE_ZH = {"running": "进行中", "covered": "已全覆盖", "short": "未全覆盖，已上报上级"}


def refused(refusal: VisitRefused) -> RequestValidationError:
    """The 422 of a refused visit or round, on its field, in Chinese."""
    return RequestValidationError(
        [{"loc": ("body", refusal.field), "type": "visit.refused", "msg": str(refusal)}]
    )


def visit_out(visit: storage.HouseholdVisit) -> VisitOut:
    """The response form of a visit."""
    return VisitOut(**visit.model_dump(), outcome_label=OUTCOME_ZH[Outcome(visit.outcome)])


def round_out(found: visit_flows.Progress) -> VisitRoundOut:
    """The response form of a round and where it stands."""
    visit_round = found.visit_round
    if visit_round.next_at is not None:
        state = "running"
    else:
        state = "short" if visit_round.escalated else "covered"
    return VisitRoundOut(
        **visit_round.model_dump(exclude={"visited", "households"}),
        visited=found.visited, households=found.households,
        coverage=coverage(found.visited, found.households), state=state,
        state_label=_STATE_ZH[state],
    )  # fmt: skip


@router.post(
    "/visits", operation_id="record_household_visit", status_code=201, responses=_RESPONSES
)
async def record_visit(body: VisitIn, request: Request, staff: Recorder) -> VisitOut:
    """A visit to a household under the staff member's node (入户): who, when, what was found.

    The household must be the Directory's (a building or unit is refused, 422); the same
    `submission_id` from the same person again returns the first record.
    """
    moment = now()
    visit = visit_flows.Visit(
        household_id=body.household_id, outcome=body.outcome, visited_at=body.visited_at or moment,
        note=body.note, submission_id=body.submission_id,
    )  # fmt: skip
    try:
        place = await visit_flows.locate(
            request.app.state.household_of, body.household_id, "household_id",
            visit_flows.no_household(body.household_id),
        )  # fmt: skip
        row = await visit_flows.record_visit(
            request.app.state.db, visit, place, staff, channel="http", moment=moment
        )
    except VisitRefused as refusal:
        raise refused(refusal) from None
    except Forbidden as refusal:
        raise forbidden(refusal) from None
    except grpc.aio.AioRpcError:
        raise directory_down("入户的户，入户记录未保存") from None
    return visit_out(row)


@router.get("/visits", operation_id="list_household_visits", responses=STAFF_RESPONSES)
async def list_visits(
    request: Request,
    staff: Reader,
    day: Annotated[date, Query(description="The day (Asia/Shanghai).")],
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[VisitOut]:
    """The visits of one day under the staff member's node, latest first."""
    start = datetime.combine(day, time(0), SHANGHAI)
    async with request.app.state.db.session() as session:
        rows = await storage.visits_between(
            session, start, start + timedelta(days=1), within=staff, limit=limit
        )
    return [visit_out(row) for row in rows]


@router.post(
    "/visit-rounds", operation_id="open_visit_round", status_code=201, responses=_RESPONSES
)
async def open_round(body: VisitRoundIn, request: Request, staff: Recorder) -> VisitRoundOut:
    """Open a round over a grid or community under the staff member's node, with a deadline.

    Community staff and the offices above open rounds. At the deadline a round that did not
    reach every household of its node goes once to the office above it.
    """
    moment = now()
    try:
        check_runs_rounds(staff)  # the role, before the Directory is asked
    except Forbidden as refusal:
        raise forbidden(refusal, "staff.forbidden") from None
    try:
        place: Place = await visit_flows.locate(
            request.app.state.place_of, body.node_id, "node_id",
            f"目录中没有编号为“{body.node_id}”的网格或社区，请核对编号",
        )  # fmt: skip
        row = await visit_flows.open_round(
            request.app.state.db, name=body.name, node_id=body.node_id, place=place,
            starts_at=body.starts_at or moment, deadline_at=body.deadline_at, staff=staff,
            moment=moment,
        )  # fmt: skip
    except VisitRefused as refusal:
        raise refused(refusal) from None
    except Forbidden as refusal:
        raise forbidden(refusal) from None
    except grpc.aio.AioRpcError:
        raise directory_down("排摸的网格或社区，轮次未建立") from None
    return round_out(visit_flows.Progress(row, 0, None))


@router.get("/visit-rounds", operation_id="list_visit_rounds", responses=STAFF_RESPONSES)
async def list_rounds(
    request: Request,
    staff: Reader,
    running: Annotated[
        bool, Query(description="Only the rounds not yet at their deadline.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[VisitRoundOut]:
    """The rounds under the staff member's node, latest deadline first, with their coverage."""
    db = request.app.state.db
    async with db.session() as session:
        rounds = await storage.rounds_of(session, staff, open_only=running, limit=limit)
    found = await visit_flows.progress(db, request.app.state.visit_households, rounds)
    return [round_out(p) for p in found]
