"""Escalation's HTTP routes: read tasks, their audit trail, and act on them.

Every route but the SMS gateway's webhook is a staff route: it needs a staff token whose role
allows the action (`gridline.staff`), and touches only what lies under the staff member's node
(`services.escalation.access`); the audit trail names the person.
"""

from __future__ import annotations

from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Body, Depends, Query, Request, status
from fastapi.exceptions import RequestValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.contracts.enums import chain_level
from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.problems import ProblemError
from gridline.staff.http import STAFF_RESPONSES, forbidden, refusing, requires
from gridline.staff.identity import Forbidden, Place, Staff
from gridline.staff.roles import Permission
from gridline.timestamps import now
from services.escalation import access, check_in_flows, flows, storage, zero_report_flows
from services.escalation.check_ins import CheckInRefused
from services.escalation.domain import (
    ACTION_LABELS,
    STATE_LABELS,
    Action,
    ChangeRefused,
    MeasureRequired,
    TransitionRefused,
    allowed_actions,
)
from services.escalation.schemas import (
    ChangeIn,
    ChangeOut,
    CheckInOut,
    EscalationOut,
    MeasureIn,
    ReassignIn,
    SmsCheckInIn,
    TaskOut,
    TestResultIn,
    TestResultOut,
    ZeroReportIn,
    ZeroReportOut,
)
from services.escalation.zero_reports import Counts, Schedule

router = APIRouter(prefix="/v1", tags=["tasks"])

_ACTION_RESPONSES: dict[int | str, dict[str, str]] = {
    **STAFF_RESPONSES,
    404: {"description": "No such task."},
    409: {
        "description": "Not allowed in the task's current state (`task.transition_refused`, "
        "the state named in the detail)."
    },
}
_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    k: _ACTION_RESPONSES[k] for k in (401, 403, 404)
}


def no_task(task_id: str) -> ProblemError:
    """The 404 of a task id nobody knows."""
    return ProblemError(
        status.HTTP_404_NOT_FOUND, "task.not_found", f"没有编号为“{task_id}”的任务，请核对任务编号"
    )


async def readable_task(session: AsyncSession, task_id: str, staff: Staff) -> storage.Task:
    """The task, if it exists (else 404) and the person may read it (else 403)."""
    task = await storage.get_task(session, task_id)
    if task is None:
        raise no_task(task_id)
    with refusing():
        access.check_read(staff, task)
    return task


def transition_refused(refused: TransitionRefused) -> ProblemError:
    """The 409 of an action the task's state does not allow, naming the state in Chinese."""
    state = STATE_LABELS.get(refused.state, refused.state)
    action = ACTION_LABELS.get(Action(refused.action), refused.action)
    return ProblemError(
        status.HTTP_409_CONFLICT,
        "task.transition_refused",
        f"任务当前状态为「{state}」，不能{action}（{refused.action}）",
    )


TaskReader = Annotated[Staff, Depends(requires(Permission.TASKS_READ, Permission.MEASURES_READ))]
TaskActor = Annotated[Staff, Depends(requires(Permission.TASKS_ACT))]
TaskReassigner = Annotated[Staff, Depends(requires(Permission.TASKS_REASSIGN))]


def task_out(task: storage.Task, escalations: list[storage.Escalation]) -> TaskOut:
    """The response form of a task."""
    return TaskOut(
        **task.model_dump(exclude={"escalations"}),
        allowed_actions=[a.value for a in allowed_actions(task.state)],
        escalations=[EscalationOut(**e.model_dump()) for e in escalations],
    )


@router.get("/tasks", operation_id="list_tasks", responses=STAFF_RESPONSES)
async def list_tasks(
    request: Request,
    staff: TaskReader,
    state: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    # SQL takes a signed 64-bit OFFSET: a larger one is a 422 here, not a database error.
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> list[TaskOut]:
    """The tasks under the staff member's node, newest first (the health centre: those of
    people under a measure)."""
    db: Database = request.app.state.db
    async with db.session() as session:
        tasks = await storage.list_tasks(
            session, state=state, limit=limit, offset=offset, within=staff,
            measures_only=access.measures_only(staff),
        )  # fmt: skip
        return [task_out(t, []) for t in tasks]


@router.get("/tasks/{task_id}", operation_id="get_task", responses=_READ_RESPONSES)
async def get_task(task_id: str, request: Request, staff: TaskReader) -> TaskOut:
    """One task and its escalations."""
    db: Database = request.app.state.db
    async with db.session() as session:
        task = await readable_task(session, task_id, staff)
        return task_out(task, list(await storage.escalations_of(session, task_id)))


@router.get("/tasks/{task_id}/changes", operation_id="list_task_changes", responses=_READ_RESPONSES)
async def list_task_changes(task_id: str, request: Request, staff: TaskReader) -> list[ChangeOut]:
    """The task's audit trail: every change, who made it, when and through what."""
    db: Database = request.app.state.db
    async with db.session() as session:
        await readable_task(session, task_id, staff)
        return [ChangeOut(**c.model_dump()) for c in await storage.changes_of(session, task_id)]


async def apply_change(
    request: Request, task_id: str, change: flows.Change, staff: Staff
) -> TaskOut:
    """Run a change on a task in the staff member's scope and map its refusals to HTTP
    answers."""
    try:
        task, escalations = await flows.change_task(
            request.app.state.db, request.app.state.policy, task_id, change,
            check_ins=request.app.state.check_ins,
            guard=lambda task: access.check_act(staff, task), links=request.app.state.links,
        )  # fmt: skip
    except flows.TaskNotFound as exc:
        raise no_task(task_id) from exc
    except Forbidden as refused:
        raise forbidden(refused) from None
    except TransitionRefused as exc:
        raise transition_refused(exc) from exc
    except MeasureRequired as exc:
        raise RequestValidationError(
            [{"loc": ("body", "measure"), "type": "measure.required",
              "msg": "开始管控措施须注明类别：quarantine（居家隔离）或 monitoring（居家健康监测）"}]
        ) from exc  # fmt: skip
    except ChangeRefused as exc:
        raise ProblemError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "task.change_refused", str(exc)
        ) from exc
    return task_out(task, escalations)


def _simple(action: Action, summary: str) -> None:
    async def endpoint(
        task_id: str,
        request: Request,
        staff: TaskActor,
        body: Annotated[ChangeIn | None, Body()] = None,
    ) -> TaskOut:
        try:
            flows.require_authority(staff, action)
        except Forbidden as refused:
            raise forbidden(refused, "staff.forbidden") from None
        given = body or ChangeIn()
        change = flows.Change(
            action, actor=staff.audit_name, channel="http", note=given.note,
            authority=flows.staff_authority(staff),
        )  # fmt: skip
        return await apply_change(request, task_id, change, staff)

    endpoint.__doc__ = summary
    name = action.value.replace("_", "-")
    router.add_api_route(
        f"/tasks/{{task_id}}:{name}",
        endpoint,
        methods=["POST"],
        operation_id=f"{action.value}_task",
        responses=_ACTION_RESPONSES,
        summary=summary,
    )


_simple(Action.ACKNOWLEDGE, "The assignee took the task: its pending deadline is cancelled.")
_simple(Action.RECORD_VISIT, "The cadre visited the household and verified the report.")
_simple(Action.END_MEASURE, "The control measure ended: the task is closed.")
_simple(Action.CLOSE, "Closed without a measure (or a triage task that was no arrival).")
_simple(Action.SEND_TO_TRIAGE, "Not in the assignee's care: back to the community to place.")
_simple(
    Action.REQUEST_EARLY_END,
    "Ask to end the measure before it runs out; `note`, the reason, is required. The township "
    "office is asked to approve; the measure runs on meanwhile.",
)
_simple(Action.APPROVE_EARLY_END, "The township office or above approves the early end.")
_simple(Action.REFUSE_EARLY_END, "The township office or above refuses it: the measure runs on.")
_simple(
    Action.RECORD_LEFT,
    "The person left again; `note`, the destination, is required (the county office is told).",
)
_simple(Action.RECORD_NOT_FOUND, "Nobody of that name at the address.")
_simple(Action.TO_HOSPITAL, "The person was transferred to hospital.")
_simple(Action.TO_ISOLATION, "The person was transferred to central isolation (集中隔离).")


@router.post(
    "/tasks/{task_id}:record-test",
    operation_id="record_test_task",
    responses={
        **_ACTION_RESPONSES,
        422: {"description": "A field's rule, or `task.change_refused` with the reason."},
    },
)
async def record_test(
    task_id: str, body: TestResultIn, request: Request, staff: TaskActor
) -> TaskOut:
    """A test result during the measure; a positive one moves the case to transfer (待转运)
    and goes at once to the health centre and the county office."""
    change = flows.Change(
        Action.RECORD_TEST, actor=staff.audit_name, channel="http", note=body.note,
        result=body.result, source_id=body.source_id,
        authority=flows.staff_authority(staff),
    )  # fmt: skip
    return await apply_change(request, task_id, change, staff)


@router.get(
    "/tasks/{task_id}/test-results", operation_id="list_test_results", responses=_READ_RESPONSES
)
async def list_test_results(
    task_id: str, request: Request, staff: TaskReader
) -> list[TestResultOut]:
    """The test results recorded during the task's measure, oldest first."""
    db: Database = request.app.state.db
    async with db.session() as session:
        await readable_task(session, task_id, staff)
        records = await storage.test_records_of(session, task_id)
        return [TestResultOut(**r.model_dump()) for r in records]


@router.post(
    "/tasks/{task_id}:start-measure",
    operation_id="start_measure_task",
    responses=_ACTION_RESPONSES,
)
async def start_measure(
    task_id: str, body: MeasureIn, request: Request, staff: TaskActor
) -> TaskOut:
    """Home quarantine or home health monitoring begins."""
    change = flows.Change(
        Action.START_MEASURE, actor=staff.audit_name, channel="http", note=body.note,
        measure=body.measure, authority=flows.staff_authority(staff),
    )  # fmt: skip
    return await apply_change(request, task_id, change, staff)


@router.post(
    "/tasks/{task_id}:reassign",
    operation_id="reassign_task",
    responses={
        **_ACTION_RESPONSES,
        422: {"description": f"A field's rule among others `{flows.NODE_UNKNOWN}`: no such node."},
        503: {"description": "The Directory could not be asked whether the node exists."},
    },
)
async def reassign(
    task_id: str, body: ReassignIn, request: Request, staff: TaskReassigner
) -> TaskOut:
    """Give the task to another holder (or place a triage task); its deadlines start again.

    A `node_id` the Directory does not know is refused (422, the field's rule
    `node_id.unknown`), one outside the staff member's node with 403.
    """
    place = None
    if body.node_id:
        place = await _locate(request, body.node_id, "node_id", "改派的节点，任务未改派")
        with refusing():
            access.check_reassign_to(staff, place)
    assignee = common_pb2.Responsible(level=chain_level(body.level), group_id=body.group_id)
    change = flows.Change(
        Action.REASSIGN, actor=staff.audit_name, channel="http", note=body.note,
        assignee=assignee, node_id=body.node_id, place=place,
    )  # fmt: skip
    return await apply_change(request, task_id, change, staff)


async def _locate(request: Request, node_id: str, field: str, what: str) -> Place:
    """Where a node sits, asked of the Directory: 422 (`node_id.unknown`) for a node it lacks,
    503 while it cannot be asked."""
    try:
        return await flows.locate(request.app.state.place_of, node_id)
    except flows.NodeUnknown as unknown:
        raise RequestValidationError(
            [{"loc": ("body", field), "type": flows.NODE_UNKNOWN, "msg": str(unknown)}]
        ) from None
    except grpc.aio.AioRpcError:
        raise directory_down(what) from None


def directory_down(what: str) -> ProblemError:
    """The 503 of a Directory that could not be asked."""
    return ProblemError(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "directory.unavailable",
        f"暂时无法连接目录服务，未能核实{what}，请稍后重试",
        headers={"Retry-After": "5"},
    )


@router.post(
    "/zero-reports",
    operation_id="submit_zero_report",
    tags=["zero reports"],
    status_code=status.HTTP_201_CREATED,
    responses={
        **STAFF_RESPONSES,
        422: {"description": f"A field's rule among others `{flows.NODE_UNKNOWN}`: no such grid."},
        503: {"description": "The Directory could not be asked where the grid is."},
    },
)
async def submit_zero_report(
    body: ZeroReportIn,
    request: Request,
    staff: Annotated[Staff, Depends(requires(Permission.ZERO_REPORTS_SUBMIT))],
) -> ZeroReportOut:
    """A grid's daily report (zero included); a second one the same day replaces the first.

    The grid must be one of the Directory's under the staff member's node.
    """
    place = await _locate(request, body.grid_id, "grid_id", "报送的网格，未能收下零报告")
    if place.grid_id != body.grid_id:
        raise RequestValidationError(
            [{"loc": ("body", "grid_id"), "type": flows.NODE_UNKNOWN,
              "msg": f"“{body.grid_id}”不是网格，零报告按网格报送；请核对网格编号"}]
        )  # fmt: skip
    with refusing():
        staff.require_scope(place, "该网格")
    schedule: Schedule = request.app.state.schedule
    moment = now()
    report = await zero_report_flows.submit(
        request.app.state.db, schedule, body.grid_id, body.day or schedule.day_of(moment),
        Counts(body.arrivals, body.under_control, body.abnormal),
        actor=staff.audit_name, channel="http", moment=moment, place=place,
    )  # fmt: skip
    return ZeroReportOut(**report.model_dump())


@router.get(
    "/zero-reports",
    operation_id="list_zero_reports",
    tags=["zero reports"],
    responses=STAFF_RESPONSES,
)
async def list_zero_reports(
    request: Request,
    day: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")],
    staff: Annotated[Staff, Depends(requires(Permission.ZERO_REPORTS_READ))],
) -> list[ZeroReportOut]:
    """The reports of one day (YYYY-MM-DD, Asia/Shanghai) from the grids under the staff
    member's node."""
    async with request.app.state.db.session() as session:
        reports = await storage.zero_reports_of(session, day, within=staff)
        return [ZeroReportOut(**r.model_dump()) for r in reports]


@router.post(
    "/check-ins:sms",
    operation_id="sms_check_in",
    tags=["check-ins"],
    status_code=status.HTTP_201_CREATED,
    responses={
        422: {
            "description": "The reply could not be read or matched to a measure "
            "(`check_in.refused`)."
        }
    },
)
async def sms_check_in(body: SmsCheckInIn, request: Request) -> CheckInOut:
    """An SMS reply `CODE 36.8 [symptoms]`; a fever or listed symptom tells people at once."""
    try:
        check_in, sent = await check_in_flows.take_sms(
            request.app.state.db, request.app.state.check_ins, request.app.state.chain_of,
            text=body.text, message_id=body.message_id, sender=body.sender, moment=now(),
            links=request.app.state.links,
        )  # fmt: skip
    except CheckInRefused as exc:
        raise check_in_refused(exc) from exc
    return CheckInOut(**check_in.model_dump(), notified=len(sent))


def check_in_refused(refused: CheckInRefused) -> ProblemError:
    """The 422 of a check-in that could not be taken; its message says why, in Chinese."""
    return ProblemError(status.HTTP_422_UNPROCESSABLE_CONTENT, "check_in.refused", str(refused))
