"""Escalation's HTTP routes: read tasks, their audit trail, and act on them."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, Body, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError

from gridline.contracts.enums import chain_level
from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.timestamps import now
from services.escalation import check_in_flows, flows, storage, zero_report_flows
from services.escalation.check_ins import CheckInRefused, parse_sms
from services.escalation.domain import Action, MeasureRequired, TransitionRefused, allowed_actions
from services.escalation.schemas import (
    ChangeIn,
    ChangeOut,
    CheckInOut,
    EscalationOut,
    MeasureIn,
    ReassignIn,
    SmsCheckInIn,
    TaskOut,
    ZeroReportIn,
    ZeroReportOut,
)
from services.escalation.zero_reports import Counts, Schedule

router = APIRouter(prefix="/v1", tags=["tasks"])

_ACTION_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "No such task."},
    409: {"description": "Not allowed in the task's current state (named in the detail)."},
}


def task_out(task: storage.Task, escalations: list[storage.Escalation]) -> TaskOut:
    """The response form of a task."""
    return TaskOut(
        **task.model_dump(exclude={"escalations"}),
        allowed_actions=[a.value for a in allowed_actions(task.state)],
        escalations=[EscalationOut(**e.model_dump()) for e in escalations],
    )


@router.get("/tasks", operation_id="list_tasks")
async def list_tasks(
    request: Request,
    state: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TaskOut]:
    """Tasks, newest first."""
    db: Database = request.app.state.db
    async with db.session() as session:
        tasks = await storage.list_tasks(session, state=state, limit=limit, offset=offset)
        return [task_out(t, []) for t in tasks]


@router.get("/tasks/{task_id}", operation_id="get_task", responses={404: _ACTION_RESPONSES[404]})
async def get_task(task_id: str, request: Request) -> TaskOut:
    """One task and its escalations."""
    db: Database = request.app.state.db
    async with db.session() as session:
        task = await storage.get_task(session, task_id)
        if task is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {task_id}")
        return task_out(task, list(await storage.escalations_of(session, task_id)))


@router.get(
    "/tasks/{task_id}/changes",
    operation_id="list_task_changes",
    responses={404: _ACTION_RESPONSES[404]},
)
async def list_task_changes(task_id: str, request: Request) -> list[ChangeOut]:
    """The task's audit trail: every change, who made it, when and through what."""
    db: Database = request.app.state.db
    async with db.session() as session:
        if await storage.get_task(session, task_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {task_id}")
        return [ChangeOut(**c.model_dump()) for c in await storage.changes_of(session, task_id)]


async def apply_change(request: Request, task_id: str, change: flows.Change) -> TaskOut:
    """Run a change and map its refusals to HTTP answers."""
    try:
        task, escalations = await flows.change_task(
            request.app.state.db, request.app.state.policy, task_id, change,
            check_ins=request.app.state.check_ins,
        )  # fmt: skip
    except flows.TaskNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {task_id}") from exc
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except MeasureRequired as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    return task_out(task, escalations)


def _simple(action: Action, summary: str) -> None:
    async def endpoint(
        task_id: str, request: Request, body: Annotated[ChangeIn | None, Body()] = None
    ) -> TaskOut:
        given = body or ChangeIn()
        change = flows.Change(action, actor=given.actor, channel="http", note=given.note)
        return await apply_change(request, task_id, change)

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


@router.post(
    "/tasks/{task_id}:start-measure",
    operation_id="start_measure_task",
    responses=_ACTION_RESPONSES,
)
async def start_measure(task_id: str, body: MeasureIn, request: Request) -> TaskOut:
    """Home quarantine or home health monitoring begins."""
    change = flows.Change(
        Action.START_MEASURE, actor=body.actor, channel="http", note=body.note,
        measure=body.measure,
    )  # fmt: skip
    return await apply_change(request, task_id, change)


@router.post(
    "/tasks/{task_id}:reassign",
    operation_id="reassign_task",
    responses={
        **_ACTION_RESPONSES,
        422: {"description": f"Among others, `{flows.NODE_UNKNOWN}`: no such node."},
        503: {"description": "The Directory could not be asked whether the node exists."},
    },
)
async def reassign(task_id: str, body: ReassignIn, request: Request) -> TaskOut:
    """Give the task to another holder (or place a triage task); its deadlines start again.

    A `node_id` the Directory does not know is refused (422, `type` `node_id.unknown`).
    """
    if body.node_id:
        try:
            await flows.check_node(request.app.state.chain_of, body.node_id)
        except flows.NodeUnknown as unknown:
            raise RequestValidationError(
                [{"loc": ("body", "node_id"), "type": flows.NODE_UNKNOWN, "msg": str(unknown)}]
            ) from None
        except grpc.aio.AioRpcError:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="暂时无法连接目录服务，未能核实改派的节点，任务未改派，请稍后重试",
                headers={"Retry-After": "5"},
            ) from None
    assignee = common_pb2.Responsible(level=chain_level(body.level), group_id=body.group_id)
    change = flows.Change(
        Action.REASSIGN, actor=body.actor, channel="http", note=body.note,
        assignee=assignee, node_id=body.node_id,
    )  # fmt: skip
    return await apply_change(request, task_id, change)


@router.post(
    "/zero-reports",
    operation_id="submit_zero_report",
    tags=["zero reports"],
    status_code=status.HTTP_201_CREATED,
)
async def submit_zero_report(body: ZeroReportIn, request: Request) -> ZeroReportOut:
    """A grid's daily report (zero included); a second one the same day replaces the first."""
    schedule: Schedule = request.app.state.schedule
    moment = now()
    report = await zero_report_flows.submit(
        request.app.state.db, schedule, body.grid_id, body.day or schedule.day_of(moment),
        Counts(body.arrivals, body.under_control, body.abnormal, body.households_visited,
               body.found_by_cadres),
        actor=body.actor, channel="http", moment=moment,
    )  # fmt: skip
    return ZeroReportOut(**report.model_dump())


@router.get("/zero-reports", operation_id="list_zero_reports", tags=["zero reports"])
async def list_zero_reports(
    request: Request, day: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")]
) -> list[ZeroReportOut]:
    """The reports of one day (YYYY-MM-DD, Asia/Shanghai)."""
    async with request.app.state.db.session() as session:
        return [
            ZeroReportOut(**r.model_dump()) for r in await storage.zero_reports_of(session, day)
        ]


@router.post(
    "/check-ins:sms",
    operation_id="sms_check_in",
    tags=["check-ins"],
    status_code=status.HTTP_201_CREATED,
    responses={422: {"description": "The reply could not be read or matched to a measure."}},
)
async def sms_check_in(body: SmsCheckInIn, request: Request) -> CheckInOut:
    """An SMS reply `CODE 36.8 [symptoms]`; a fever or listed symptom tells people at once."""
    try:
        reply = parse_sms(body.text)
        async with request.app.state.db.session() as session:
            tasks = await storage.task_by_code(session, reply.code)
        if len(tasks) != 1:
            raise CheckInRefused(f"code {reply.code} matches no single task under a measure")
        check_in, sent = await check_in_flows.take(
            request.app.state.db, request.app.state.check_ins, request.app.state.chain_of,
            task_id=tasks[0].task_id,
            temperature=reply.temperature, symptoms=reply.symptoms, channel="sms",
            source_id=body.message_id, moment=now(),
        )  # fmt: skip
    except CheckInRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    return CheckInOut(**check_in.model_dump(), notified=len(sent))
