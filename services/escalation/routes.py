"""Escalation's HTTP routes: read tasks and acknowledge them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from gridline.bus.producer import BrokerUnavailable
from gridline.db import Database
from services.escalation import flows, storage
from services.escalation.domain import TransitionRefused
from services.escalation.schemas import EscalationOut, TaskOut

router = APIRouter(prefix="/v1", tags=["tasks"])


def _out(task: storage.Task, escalations: list[storage.Escalation]) -> TaskOut:
    return TaskOut(
        **task.model_dump(exclude={"escalations"}),
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
        return [_out(t, []) for t in tasks]


@router.get("/tasks/{task_id}", operation_id="get_task")
async def get_task(task_id: str, request: Request) -> TaskOut:
    """One task and its escalations."""
    db: Database = request.app.state.db
    async with db.session() as session:
        task = await storage.get_task(session, task_id)
        if task is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {task_id}")
        return _out(task, list(await storage.escalations_of(session, task_id)))


@router.post(
    "/tasks/{task_id}:acknowledge",
    operation_id="acknowledge_task",
    responses={404: {"description": "No such task."}, 409: {"description": "Not allowed now."}},
)
async def acknowledge_task(task_id: str, request: Request) -> TaskOut:
    """The assignee took the task: its pending deadline is cancelled."""
    try:
        task, escalations = await flows.acknowledge_task(
            request.app.state.db, request.app.state.producer, task_id, actor="http"
        )
    except flows.TaskNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {task_id}") from exc
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except BrokerUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the broker could not confirm the acknowledgement; retry",
            headers={"Retry-After": "5"},
        ) from exc
    return _out(task, escalations)
