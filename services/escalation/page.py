"""The cadre's task page: opened from a signed, expiring link on a phone, in Chinese, no password.

The holder of the link sees the task and the actions its state allows now; each action is a plain
form POST back to a signed URL, recorded in the audit trail through the `page` channel.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridline.contracts.enums import CHAIN_LEVEL_ZH
from gridline.links import PageLinks
from gridline.pages import Pages
from gridline.signed_links import LinkRefused
from gridline.timestamps import now
from services.escalation import check_in_flows, flows, storage
from services.escalation.check_ins import SYMPTOMS, CheckInRefused, check_in_code
from services.escalation.domain import (
    ACTION_LABELS,
    STATE_LABELS,
    Action,
    Measure,
    TaskState,
    TransitionRefused,
    allowed_actions,
)
from services.escalation.schemas import CheckInOut, LinkCheckInIn

router = APIRouter(tags=["task page"], include_in_schema=False)

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGES = Pages(Path(__file__).parent / "templates")

# What the page offers; reassignment and triage stay with the community's tools.
PAGE_ACTIONS = (
    Action.ACKNOWLEDGE,
    Action.RECORD_VISIT,
    Action.START_MEASURE,
    Action.END_MEASURE,
    Action.CLOSE,
)
MEASURE_LABELS = {Measure.QUARANTINE: "居家隔离", Measure.MONITORING: "居家健康监测"}
REFUSALS = {
    "invalid": (
        status.HTTP_403_FORBIDDEN,
        "链接无效",
        "此链接无效或已被改动，请使用通知中的原始链接。",
    ),
    "expired": (status.HTTP_410_GONE, "链接已过期", "此链接已过期，请联系社区重新发送任务通知。"),
}

Expiry = Annotated[str, Query(alias="e", max_length=20)]
Signature = Annotated[str, Query(alias="s", max_length=100)]


def _local(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(SHANGHAI).strftime("%m月%d日 %H:%M")


def _message(title: str, text: str, status_code: int, heading: bool = True) -> HTMLResponse:
    return PAGES.response(
        "message.html", status_code, title=title, heading=title if heading else "", text=text
    )


def _refused(reason: str) -> HTMLResponse:
    code, title, text = REFUSALS[reason]
    return _message(title, text, code)


def _buttons(task: storage.Task, query: str) -> list[tuple[str, str]]:
    """Each action the page offers now: the URL its form posts to, and its label."""
    found = []
    for action in allowed_actions(task.state):
        if action not in PAGE_ACTIONS:
            continue
        target = f"/t/{task.task_id}/{action.value}?{query}"
        if action is Action.START_MEASURE:
            found += [
                (f"{target}&{urlencode({'m': measure})}", f"开始{label}")
                for measure, label in MEASURE_LABELS.items()
            ]
        else:
            found.append((target, ACTION_LABELS[action]))
    return found


def _page(
    task: storage.Task, escalations: list[storage.Escalation], query: str, error: str = ""
) -> HTMLResponse:
    check_in = None
    if task.state == TaskState.UNDER_CONTROL:
        check_in = {
            "code": check_in_code(task.task_id),
            "symptoms": SYMPTOMS,
            "target": f"/t/{task.task_id}/check-in?{query}",
        }
    return PAGES.response(
        "task.html",
        title="核查任务",
        error=error,
        state=STATE_LABELS.get(task.state, task.state),
        summary=task.summary,
        deadline=_local(task.deadline_at),
        measure=MEASURE_LABELS.get(Measure(task.measure)) if task.measure else None,
        went_up=[
            (_local(e.raised_at), CHAIN_LEVEL_ZH.get(e.level, ""), e.reason) for e in escalations
        ],
        buttons=_buttons(task, query),
        check_in=check_in,
    )


async def _load(request: Request, task_id: str) -> tuple[storage.Task, list[storage.Escalation]]:
    async with request.app.state.db.session() as session:
        task = await storage.get_task(session, task_id)
        if task is None:
            raise flows.TaskNotFound(task_id)
        return task, list(await storage.escalations_of(session, task_id))


@router.get("/t/{task_id}", response_class=HTMLResponse)
async def task_page(task_id: str, request: Request, e: Expiry = "", s: Signature = "") -> Response:
    """The task and the actions allowed now, for the holder of a valid link."""
    links: PageLinks = request.app.state.links
    try:
        links.check(task_id, e, s, now())
        task, escalations = await _load(request, task_id)
    except LinkRefused as exc:
        return _refused(exc.reason)
    except flows.TaskNotFound:
        return _refused("invalid")
    return _page(task, escalations, urlencode({"e": e, "s": s}))


@router.post("/t/{task_id}/check-in")
async def task_page_check_in(
    task_id: str, body: LinkCheckInIn, request: Request, e: Expiry = "", s: Signature = ""
) -> CheckInOut:
    """A check-in from the phone link; a fever or listed symptom tells people at once."""
    links: PageLinks = request.app.state.links
    try:
        links.check(task_id, e, s, now())
    except LinkRefused as exc:
        code, title, _ = REFUSALS[exc.reason]
        raise HTTPException(code, detail=title) from exc
    try:
        check_in, sent = await check_in_flows.take(
            request.app.state.db, request.app.state.check_ins, request.app.state.chain_of,
            task_id=task_id, temperature=body.temperature,
            symptoms=body.symptoms, channel="link", source_id=body.submission_id, moment=now(),
        )  # fmt: skip
    except CheckInRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    return CheckInOut(**check_in.model_dump(), notified=len(sent))


@router.post("/t/{task_id}/{action}", response_class=HTMLResponse)
async def task_page_action(
    task_id: str,
    action: str,
    request: Request,
    e: Expiry = "",
    s: Signature = "",
    m: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Apply one action from the page, then show the page again (or why it was refused)."""
    links: PageLinks = request.app.state.links
    query = urlencode({"e": e, "s": s})
    try:
        links.check(task_id, e, s, now())
        chosen = Action(action)
        if chosen not in PAGE_ACTIONS:
            raise ValueError(action)
        measure = Measure(m) if chosen is Action.START_MEASURE else None
    except LinkRefused as exc:
        return _refused(exc.reason)
    except ValueError:
        return _message("操作无效", "不支持此操作。", 400, heading=False)
    change = flows.Change(chosen, actor="link-holder", channel="page", measure=measure)
    try:
        await flows.change_task(
            request.app.state.db, request.app.state.policy, task_id, change,
            check_ins=request.app.state.check_ins,
        )  # fmt: skip
    except flows.TaskNotFound:
        return _refused("invalid")
    except TransitionRefused as exc:
        task, escalations = await _load(request, task_id)
        state = STATE_LABELS.get(exc.state, exc.state)
        text = f"当前状态为「{state}」，不能{ACTION_LABELS[chosen]}。"
        return _page(task, escalations, query, error=text)
    return RedirectResponse(f"/t/{task_id}?{query}", status_code=status.HTTP_303_SEE_OTHER)
