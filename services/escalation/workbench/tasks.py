"""The task board (任务): one's node's tasks, a task with its history, and its actions.

Actions go through `flows.change_task` like the API's, with the person's name in the audit
trail (channel `workbench`) and the same scope check under the row lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridline.contracts.enums import RISK_ZH, risk_zh, source_zh
from gridline.staff.identity import Forbidden, Staff
from gridline.staff.roles import Permission
from gridline.timestamps import now, zh_time
from services.escalation import access, flows, storage
from services.escalation.domain import (
    ACTION_LABELS,
    MEASURE_ZH,
    RISK_RAISE,
    STATE_LABELS,
    TEST_RESULT_ZH,
    Action,
    ChangeRefused,
    Measure,
    MeasureRequired,
    TaskState,
    TestResult,
    TransitionRefused,
    allowed_actions,
)
from services.escalation.page import NOTE_PROMPTS
from services.escalation.workbench import board
from services.escalation.workbench.session import (
    PREFIX,
    PageStaff,
    form_fields,
    names_of,
    reads_tasks,
    render,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Reassigning and sending back are the triage page's; the rest the board offers.
BOARD_ACTIONS = tuple(a for a in Action if a is not Action.REASSIGN)
CHANNEL = "workbench"
# The account id after the role in an audit name.
ACCOUNT_ID = re.compile(r"（([^，（）]+)，[^（）]*）$")
# What the history calls each row: an action, or a later report raising the risk.
HISTORY_LABELS = {a.value: label for a, label in ACTION_LABELS.items()} | {
    RISK_RAISE: "风险等级上调"
}
PLACE_LABELS = {"township": "乡镇（街道）", "community": "社区", "grid": "网格"}
Word = Annotated[str, Query(max_length=40)]


@dataclass(frozen=True)
class Row:
    """One task as the board shows it."""

    task_id: str
    summary: str
    state: str
    risk: str
    risk_class: str
    measure: str
    period: str
    due: str
    overdue: bool


def _when(moment: datetime | None) -> str:
    return zh_time(moment) if moment else "—"


def row_of(task: storage.Task, moment: datetime) -> Row:
    """How the board and the triage queue show a task."""
    started = MEASURE_ZH.get(Measure(task.measure)) if task.measure else None
    period = (
        f"{_when(task.measure_started_at)}至{_when(task.measure_ends_at)}"
        if task.measure_started_at
        else ""
    )
    classes = {1: "low", 2: "medium", 3: "high"}
    return Row(
        task_id=task.task_id,
        summary=task.summary,
        state=STATE_LABELS.get(task.state, task.state),
        risk=risk_zh(task.origin_risk),
        risk_class=classes.get(task.origin_risk, ""),
        measure=started or task.measure_name or "—",
        period=period,
        due=_when(board.next_deadline(task)),
        overdue=board.overdue(task, moment),
    )


def shown_actor(actor: str) -> str:
    """The audit's actor as the page names them: name and role, the account id left to the
    audit itself (`张伟（社区工作人员，p-cm01）` shows as `张伟（社区工作人员）`)."""
    return ACCOUNT_ID.sub(r"（\1）", actor)


def _refused(request: Request, staff: Staff, text: str, code: int) -> HTMLResponse:
    return render(
        request, staff, "message.html", active="tasks", title="无法查看", text=text,
        status_code=code,
    )  # fmt: skip


@router.get("/tasks", response_class=HTMLResponse)
async def task_board(
    request: Request,
    staff: PageStaff,
    state: Word = "",
    risk: Annotated[int, Query(ge=0, le=3)] = 0,
    place: Word = "",
    q: Word = "",
) -> HTMLResponse:
    """The board: one's node's tasks, overdue first, with filters and a search."""
    if not reads_tasks(staff):
        return _refused(request, staff, "您的岗位无权查看任务。", status.HTTP_403_FORBIDDEN)
    moment = now()
    filters = board.Filters(state=state, risk=risk, place=place, text=q.strip())
    async with request.app.state.db.session() as session:
        tasks = await board.board(
            session, staff, filters, moment, measures_only=access.measures_only(staff)
        )
    below = board.BELOW.get(staff.level)
    places = await names_of(request).under(staff.node_id, below[0]) if below else []
    return render(
        request, staff, "tasks.html", active="tasks", title="任务",
        rows=[row_of(t, moment) for t in tasks], filters=filters,
        states=[(s.value, STATE_LABELS[s]) for s in TaskState],
        risks=[(n, f"{label}风险") for n, label in RISK_ZH.items()],
        places=places, place_label=PLACE_LABELS.get(below[0], "") if below else "",
        limit=board.BOARD_LIMIT,
    )  # fmt: skip


@dataclass(frozen=True)
class Button:
    """One action the task page offers: its form's fields and label."""

    action: str
    label: str
    measure: str = ""
    result: str = ""
    prompt: str = ""


def buttons(task: storage.Task, staff: Staff, moment: datetime) -> list[Button]:
    """The actions the task's state allows the person now (none without the right to act)."""
    if not staff.may(Permission.TASKS_ACT):
        return []
    found: list[Button] = []
    authority = flows.staff_authority(staff)
    for action in allowed_actions(task.state, authority=authority):
        if action not in BOARD_ACTIONS:
            continue
        if action is Action.END_MEASURE and task.measure_ends_at and moment < task.measure_ends_at:
            continue  # before its end a measure is ended only on an approved request
        if action is Action.START_MEASURE:
            found += [Button(action, f"开始{label}", measure=m) for m, label in MEASURE_ZH.items()]
        elif action is Action.RECORD_TEST:
            found += [
                Button(action, f"核酸检测结果：{label}", result=r)
                for r, label in TEST_RESULT_ZH.items()
            ]
        else:
            found.append(Button(action, ACTION_LABELS[action], prompt=NOTE_PROMPTS.get(action, "")))
    return found


async def _task_page(
    request: Request, staff: Staff, task_id: str, error: str = "", done: str = ""
) -> HTMLResponse:
    async with request.app.state.db.session() as session:
        task = await storage.get_task(session, task_id)
        if task is None:
            return _refused(request, staff, "没有这项任务。", status.HTTP_404_NOT_FOUND)
        try:
            access.check_read(staff, task)
        except Forbidden as refused:
            return _refused(request, staff, f"{refused}。", status.HTTP_403_FORBIDDEN)
        changes = await storage.changes_of(session, task_id)
        escalations = await storage.escalations_of(session, task_id)
    moment = now()
    history = [
        (zh_time(c.changed_at), HISTORY_LABELS.get(c.action, "其他"),
         STATE_LABELS.get(c.to_state, c.to_state), shown_actor(c.actor), c.note)
        for c in changes
    ]  # fmt: skip
    return render(
        request, staff, "task.html", active="tasks", title="任务详情",
        row=row_of(task, moment), source=source_zh(task.report_source),
        accepted=zh_time(task.report_accepted_at), buttons=buttons(task, staff, moment),
        history=history, went_up=[(zh_time(e.raised_at), e.reason) for e in escalations],
        error=error, done=done, status_code=status.HTTP_409_CONFLICT if error else 200,
    )  # fmt: skip


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_detail(
    task_id: str, request: Request, staff: PageStaff, done: Word = ""
) -> HTMLResponse:
    """A task: where it stands, the actions allowed now, and its history (who did what)."""
    if not reads_tasks(staff):
        return _refused(request, staff, "您的岗位无权查看任务。", status.HTTP_403_FORBIDDEN)
    return await _task_page(request, staff, task_id, done=done)


def change_of(fields: dict[str, str], staff: Staff) -> flows.Change:
    """The change a task page's form asks for (ValueError for a form not ours)."""
    action = Action(fields.get("action", ""))
    if action not in BOARD_ACTIONS:
        raise ValueError(action)
    measure = Measure(fields["measure"]) if action is Action.START_MEASURE else None
    result = TestResult(fields["result"]) if action is Action.RECORD_TEST else None
    return flows.Change(
        action, actor=staff.audit_name, channel=CHANNEL, measure=measure, result=result,
        note=fields.get("note", "")[:500], authority=flows.staff_authority(staff),
    )  # fmt: skip


@router.post("/tasks/{task_id}/act")
async def act_on_task(task_id: str, request: Request, staff: PageStaff) -> Response:
    """Apply one action from the task page, then show the task again (or why not)."""
    if not staff.may(Permission.TASKS_ACT):
        return _refused(request, staff, "您的岗位无权处理任务。", status.HTTP_403_FORBIDDEN)
    try:
        change = change_of(await form_fields(request), staff)
    except (KeyError, ValueError):
        return await _task_page(request, staff, task_id, error="操作无效，请刷新页面后重试。")
    try:
        await flows.change_task(
            request.app.state.db, request.app.state.policy, task_id, change,
            check_ins=request.app.state.check_ins,
            guard=lambda task: access.check_act(staff, task), links=request.app.state.links,
        )  # fmt: skip
    except flows.TaskNotFound:
        return _refused(request, staff, "没有这项任务。", status.HTTP_404_NOT_FOUND)
    except Forbidden as refused:
        return _refused(request, staff, f"{refused}。", status.HTTP_403_FORBIDDEN)
    except TransitionRefused as exc:
        state = STATE_LABELS.get(exc.state, exc.state)
        text = f"任务当前状态为「{state}」，不能{ACTION_LABELS[change.action]}。"
        return await _task_page(request, staff, task_id, error=text)
    except (ChangeRefused, MeasureRequired) as exc:
        return await _task_page(request, staff, task_id, error=f"{exc}。")
    query = urlencode({"done": ACTION_LABELS[change.action]})
    return RedirectResponse(f"{PREFIX}/tasks/{task_id}?{query}", status.HTTP_303_SEE_OTHER)
