"""What became of a report, asked of the services that own each part of the answer."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

import grpc
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from gridline.contracts.enums import chain_level_label
from gridline.directory_client import DirectoryClient
from gridline.tasks_client import TasksClient
from gridline.timestamps import from_timestamp


class PlacementOut(BaseModel):
    """Where assignment placed the report."""

    node_id: str = Field(description="The household, or the community/township for triage.")
    grid_id: str = Field("", description="The grid (the community for triage), as on the task.")
    triage: bool
    task_id: str
    placed_at: datetime | None


class TaskOut(BaseModel):
    """A follow-up task the report became, as escalation holds it."""

    task_id: str
    state: str
    level: str = Field(description="Where on the chain it is now, e.g. cadre or liaison.")
    escalations: int
    deadline_at: datetime | None


class CaseOut(BaseModel):
    """The case a report joined: the same person was reported first by another report."""

    report_id: str = Field(description="The report that opened the case.")
    grid_id: str
    task_id: str
    task_state: str | None = Field(
        None, description="The case's task as escalation holds it; unknown until it can be asked."
    )


class ReportStatusOut(BaseModel):
    """A report's story so far."""

    report_id: str
    status: Literal["accepted", "placed", "in_follow_up"]
    source: str | None = Field(None, description="Known while intake remembers the report.")
    accepted_at: datetime | None = None
    placement: PlacementOut | None = None
    case: CaseOut | None = Field(
        None, description="Set when the report joined the open case of the same person."
    )
    tasks: list[TaskOut] = Field(
        default_factory=list, description="The report's tasks: its case's, when it joined one."
    )
    unavailable: list[str] = Field(
        default_factory=list, description="Services that could not be asked just now."
    )


class StatusUnknown(Exception):
    """Intake does not remember the report and the services that might know cannot be asked."""


def accepted_key(report_id: str) -> str:
    """The Redis key intake writes once the broker confirmed a report."""
    return f"intake:report:{report_id}"


def accepted_value(source: str, accepted_at: datetime, integrator_id: str) -> str:
    """What intake remembers of an accepted report: its source, when, and who posted it ("":
    an unsigned caller)."""
    return json.dumps(
        {"source": source, "accepted_at": accepted_at.isoformat(), "integrator": integrator_id}
    )


async def report_status(
    report_id: str,
    redis: aioredis.Redis,
    directory: DirectoryClient,
    tasks: TasksClient,
    *,
    integrator_id: str | None,
) -> ReportStatusOut | None:
    """The report's status, or None when no service knows it (StatusUnknown: cannot tell).

    With `integrator_id` (a signed caller), only a report that integrator posted is answered,
    and only while intake remembers who posted it: any other is None, before any service is
    asked. A report that joined another report's case follows that case's task.
    """
    remembered = await redis.get(accepted_key(report_id))
    known = json.loads(remembered) if remembered else None
    if integrator_id is not None and (known is None or known.get("integrator") != integrator_id):
        return None
    out = ReportStatusOut(report_id=report_id, status="accepted")
    if known is not None:
        out.source = known["source"]
        out.accepted_at = datetime.fromisoformat(known["accepted_at"])
    try:
        placement = await directory.placement(report_id)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            out.unavailable.append("directory")
    else:
        out.status = "placed"
        out.placement = PlacementOut(
            node_id=placement.node_id,
            grid_id=placement.grid_id,
            triage=placement.triage,
            task_id=placement.task_id,
            placed_at=from_timestamp(placement.placed_at)
            if placement.HasField("placed_at")
            else None,
        )
        if placement.case_report_id:
            out.case = CaseOut(
                report_id=placement.case_report_id,
                grid_id=placement.grid_id,
                task_id=placement.task_id,
            )
    try:
        found = await tasks.tasks_of_report(out.case.report_id if out.case else report_id)
    except grpc.aio.AioRpcError:
        out.unavailable.append("tasks")
        found = []
    for task in found:
        out.tasks.append(
            TaskOut(
                task_id=task.task_id,
                state=task.state,
                level=chain_level_label(task.level),
                escalations=len(task.escalations),
                deadline_at=from_timestamp(task.deadline_at)
                if task.HasField("deadline_at")
                else None,
            )
        )
    if out.tasks:
        out.status = "in_follow_up"
    if out.case is not None:
        out.case.task_state = next(
            (t.state for t in out.tasks if t.task_id == out.case.task_id), None
        )
    if known is None and out.placement is None and not out.tasks:
        if out.unavailable:
            raise StatusUnknown(
                f"本服务已不记得此报告，而 {'、'.join(out.unavailable)} 暂时无法查询；请稍后重试"
            )
        return None
    return out
