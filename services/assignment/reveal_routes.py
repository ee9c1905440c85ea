"""Assignment's HTTP route revealing a person's ID number or phone (`reveal` has the rule).

The route is built around a staff identity dependency it is given (`staff_identity`): the
staff authentication's, which answers 401 without a valid credential before the route runs.
Until one is given the router is not served.
"""

# No `from __future__ import annotations`: the route's parameters name the dependency it is
# given, a local of `reveal_router` that FastAPI could not find in a string annotation.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from gridline.db import Database
from gridline.personal import Sealer
from gridline.problems import ProblemError
from services.assignment.following import Follower
from services.assignment.reveal import (
    NothingToReveal,
    RevealField,
    RevealRefused,
    SealUnreadable,
    StaffIdentity,
    reveal,
)

# A FastAPI dependency (function or callable) that yields the caller's StaffIdentity.
StaffDependency = Callable[..., Any]


class RevealRequest(BaseModel):
    """Which field to see and what for."""

    field: RevealField = Field(description="`id_number` or `phone`.")
    purpose: str = Field(
        max_length=200, description="What the value is needed for (recorded in the audit)."
    )


class Revealed(BaseModel):
    """The clear value of one field of one report."""

    report_id: str
    field: RevealField
    value: str


def reveal_router(sealer: Sealer, staff_identity: StaffDependency) -> APIRouter:
    """The reveal route, taking the caller's identity from `staff_identity`."""
    router = APIRouter(prefix="/v1", tags=["personal data"])

    @router.post(
        "/reports/{report_id}/reveal",
        operation_id="reveal_personal_data",
        response_model=Revealed,
        responses={
            403: {"description": "The caller may not see this person's data (`reveal.refused`)."},
            404: {
                "description": "No sealed data for the report, unknown or purged "
                "(`reveal.nothing`)."
            },
            503: {
                "description": "The value was sealed with a key no longer in the ring "
                "(`reveal.seal_unreadable`)."
            },
        },
    )
    async def reveal_field(
        report_id: str,
        body: RevealRequest,
        request: Request,
        response: Response,
        staff: Annotated[StaffIdentity, Depends(staff_identity)],
    ) -> Revealed:
        """A report's ID number or phone in clear, for the person's responsible cadre or an
        office above them, for a stated purpose; every request is audited, refusals too."""
        follower: Follower = request.app.state.follower
        db: Database = request.app.state.db
        try:
            value = await reveal(
                db,
                follower.current.directory,
                sealer,
                staff,
                report_id=report_id,
                field=body.field,
                purpose=body.purpose,
            )
        except RevealRefused as exc:
            raise ProblemError(403, "reveal.refused", str(exc)) from None
        except NothingToReveal as exc:
            raise ProblemError(404, "reveal.nothing", str(exc)) from None
        except SealUnreadable as exc:
            raise ProblemError(503, "reveal.seal_unreadable", str(exc)) from None
        # A clear ID number or phone is kept by no cache between the service and the caller.
        response.headers["Cache-Control"] = "no-store"
        return Revealed(report_id=report_id, field=body.field, value=value)

    return router
