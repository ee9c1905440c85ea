"""Triage by hand (分拣): the reports that reached no household, placed by an office.

An office (community and above) sees the triage tasks under its node, searches the Directory
for a household under its node and places the task there: the household's cadre gets it
through escalation's reassignment (`flows.change_task`, action reassign), which tells their
group and restarts the deadlines. A report outside the office's area goes to the office above
(不属本辖区), which places it in turn. Each is a row of the task's history under the person.
"""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridline.contracts.enums import CHAIN_LEVEL_ZH
from gridline.contracts.v1 import common_pb2
from gridline.directory_client import DirectoryClient
from gridline.staff.identity import Forbidden, Place, Staff
from gridline.timestamps import now, zh_time
from services.escalation import access, flows, storage
from services.escalation.domain import Action, TransitionRefused
from services.escalation.workbench import board
from services.escalation.workbench.session import (
    PREFIX,
    PageStaff,
    form_fields,
    names_of,
    render,
    triages,
)
from services.escalation.workbench.tasks import CHANNEL, row_of

router = APIRouter(prefix=PREFIX, include_in_schema=False)

OUTSIDE = "不属本辖区"
DIRECTORY_DOWN = "暂时无法连接网格目录，请稍后重试。"


def above(chain: list[common_pb2.Responsible], authority: int) -> common_pb2.Responsible | None:
    """The office a report outside the area goes to: the first level of the chain above the
    person's own (None at the top)."""
    return next((r for r in chain if r.level > authority and r.group_id), None)


async def _page(
    request: Request,
    staff: Staff,
    *,
    chosen: str = "",
    text: str = "",
    error: str = "",
    done: str = "",
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    moment = now()
    async with request.app.state.db.session() as session:
        queue = await board.triage_queue(session, staff, flows.staff_authority(staff))
    households: list[tuple[str, str]] = []
    if chosen and text.strip():
        directory: DirectoryClient = request.app.state.directory
        try:
            found = await directory.search_households(staff.node_id, text, 20)
        except grpc.aio.AioRpcError:
            error = error or DIRECTORY_DOWN
            found = []
        households = [(h.household_id, h.address) for h in found]
    levels = {t.task_id: CHAIN_LEVEL_ZH.get(t.assignee_level, "") for t in queue}
    candidates = {t.task_id: list(t.candidates or []) for t in queue}
    names = await names_of(request).load(n for ids in candidates.values() for n in ids)
    return render(
        request, staff, "triage.html", active="triage", title="分拣",
        rows=[(row_of(t, moment), zh_time(t.report_accepted_at), levels[t.task_id],
               [(n, names.get(n, "")) for n in candidates[t.task_id] if names.get(n)])
              for t in queue],
        chosen=chosen, text=text, households=households, error=error, done=done,
        hands_up=staff.level.value != "county", status_code=status_code,
    )  # fmt: skip


@router.get("/triage", response_class=HTMLResponse)
async def triage_page(
    request: Request,
    staff: PageStaff,
    task: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    done: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    """The queue; with `task` and `q`, the households a search found to place that task on."""
    if not triages(staff):
        return render(
            request, staff, "message.html", active="triage", title="分拣",
            text="分拣由社区、镇联防联控办和县联防联控办办理。",
            status_code=status.HTTP_403_FORBIDDEN,
        )  # fmt: skip
    return await _page(request, staff, chosen=task, text=q, done=done)


async def _held(request: Request, staff: Staff, task_id: str) -> storage.Task:
    """The task, refused unless it is in the person's scope (Forbidden) or exists (KeyError)."""
    async with request.app.state.db.session() as session:
        task = await storage.get_task(session, task_id)
    if task is None:
        raise KeyError(task_id)
    access.check_act(staff, task)
    return task


async def _reassign(request: Request, staff: Staff, task_id: str, change: flows.Change) -> str:
    """Apply the reassignment; "" when done, else what the page says."""
    try:
        await flows.change_task(
            request.app.state.db, request.app.state.policy, task_id, change,
            check_ins=request.app.state.check_ins,
            guard=lambda task: access.check_act(staff, task), links=request.app.state.links,
        )  # fmt: skip
    except flows.TaskNotFound:
        return "没有这项任务。"
    except Forbidden as refused:
        return f"{refused}。"
    except TransitionRefused:
        return "该任务已被他人处理，请刷新后查看。"
    return ""


@router.post("/triage/{task_id}/place")
async def place_by_hand(task_id: str, request: Request, staff: PageStaff) -> Response:
    """Place a triage task on a household found in the Directory: its cadre gets the task."""
    if not triages(staff):
        return RedirectResponse(f"{PREFIX}/triage", status.HTTP_303_SEE_OTHER)
    household_id = (await form_fields(request)).get("household", "")
    directory: DirectoryClient = request.app.state.directory
    try:
        await _held(request, staff, task_id)
        place: Place = await flows.locate(directory.household, household_id)
        access.check_reassign_to(staff, place)
        chain = await directory.chain(household_id)
        [address] = [h.name for h in await directory.nodes([household_id])] or [""]
    except KeyError:
        return await _page(request, staff, error="没有这项任务。", status_code=404)
    except Forbidden as refused:
        return await _page(request, staff, error=f"{refused}。", status_code=403)
    except flows.NodeUnknown:
        return await _page(
            request, staff, error="网格目录中没有这一户，请重新查找。", status_code=422
        )
    except grpc.aio.AioRpcError:
        return await _page(request, staff, error=DIRECTORY_DOWN, status_code=503)
    cadre = next((r for r in chain if r.group_id), None)
    if cadre is None:
        return await _page(
            request, staff, error="这一户尚未配备包户干部，请先在网格目录中补齐。", status_code=422
        )
    change = flows.Change(
        Action.REASSIGN, actor=staff.audit_name, channel=CHANNEL,
        note=f"人工分拣：放置到{address}，交包户干部{cadre.person_name}", assignee=cadre,
        node_id=household_id, place=place, authority=flows.staff_authority(staff),
    )  # fmt: skip
    error = await _reassign(request, staff, task_id, change)
    if error:
        return await _page(request, staff, error=error, status_code=status.HTTP_409_CONFLICT)
    done = f"已放置到{address}，并通知包户干部{cadre.person_name}"
    return RedirectResponse(f"{PREFIX}/triage?done={done}", status.HTTP_303_SEE_OTHER)


@router.post("/triage/{task_id}/hand-up")
async def hand_up(task_id: str, request: Request, staff: PageStaff) -> Response:
    """Not in the office's area (不属本辖区): the task goes to the office above, which places it."""
    if not triages(staff):
        return RedirectResponse(f"{PREFIX}/triage", status.HTTP_303_SEE_OTHER)
    note = (await form_fields(request)).get("note", "")[:200]
    directory: DirectoryClient = request.app.state.directory
    try:
        task = await _held(request, staff, task_id)
        chain = await directory.chain(task.node_id)
    except KeyError:
        return await _page(request, staff, error="没有这项任务。", status_code=404)
    except Forbidden as refused:
        return await _page(request, staff, error=f"{refused}。", status_code=403)
    except grpc.aio.AioRpcError:
        return await _page(request, staff, error=DIRECTORY_DOWN, status_code=503)
    office = above(chain, flows.staff_authority(staff))
    if office is None:
        return await _page(request, staff, error="已是最高一级，无法再上交。", status_code=422)
    level = CHAIN_LEVEL_ZH.get(office.level, "上一级")
    change = flows.Change(
        Action.REASSIGN, actor=staff.audit_name, channel=CHANNEL,
        note=f"{OUTSIDE}，交{level}分拣" + (f"：{note}" if note else ""), assignee=office,
        authority=flows.staff_authority(staff),
    )  # fmt: skip
    error = await _reassign(request, staff, task_id, change)
    if error:
        return await _page(request, staff, error=error, status_code=status.HTTP_409_CONFLICT)
    return RedirectResponse(f"{PREFIX}/triage?done=已交{level}分拣", status.HTTP_303_SEE_OTHER)
