"""The cadre's task page: opened from a signed, expiring link on a phone, in Chinese, no password.

The holder of the link sees the task and the actions its state allows now; each action is a plain
form POST back to a signed URL, recorded in the audit trail through the `page` channel.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridline.links import PageLinks
from gridline.signed_links import LinkRefused
from gridline.timestamps import now
from services.escalation import check_in_flows, flows, storage
from services.escalation.check_ins import SYMPTOMS, CheckInRefused, check_in_code
from services.escalation.domain import (
    ACTION_LABELS,
    LEVEL_NAMES,
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


def _shell(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
body{{font-family:system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:0;padding:16px;
background:#f5f6f8;color:#1f2329;font-size:16px}}
h1{{font-size:20px;margin:0 0 12px}} .card{{background:#fff;border-radius:8px;padding:14px;
margin-bottom:12px}} dt{{color:#646a73;font-size:14px}} dd{{margin:0 0 8px}}
button{{width:100%;font-size:17px;padding:12px;margin:6px 0;border:0;border-radius:8px;
background:#1664ff;color:#fff}} .error{{background:#fdecea;color:#b42318}}
</style></head><body>{body}</body></html>"""
    return HTMLResponse(html, status_code=status_code)


def _refused(reason: str) -> HTMLResponse:
    code, title, text = REFUSALS[reason]
    return _shell(title, f'<h1>{title}</h1><div class="card error" role="alert">{text}</div>', code)


def _form(task_id: str, action: Action, query: str, label: str, measure: str = "") -> str:
    extra = f"&{urlencode({'m': measure})}" if measure else ""
    return (
        f'<form method="post" action="/t/{escape(task_id)}/{action.value}?{escape(query)}'
        f'{escape(extra)}"><button type="submit">{escape(label)}</button></form>'
    )


def _page(
    task: storage.Task, escalations: list[storage.Escalation], query: str, error: str = ""
) -> HTMLResponse:
    actions = [a for a in allowed_actions(task.state) if a in PAGE_ACTIONS]
    buttons = []
    for action in actions:
        if action is Action.START_MEASURE:
            buttons += [
                _form(task.task_id, action, query, f"开始{label}", measure)
                for measure, label in MEASURE_LABELS.items()
            ]
        else:
            buttons.append(_form(task.task_id, action, query, ACTION_LABELS[action]))
    went_up = "".join(
        f"<li>{_local(e.raised_at)} 上报{escape(LEVEL_NAMES.get(e.level, ''))}："
        f"{escape(e.reason)}</li>"
        for e in escalations
    )
    measure = MEASURE_LABELS.get(Measure(task.measure)) if task.measure else None
    body = f"""<h1>来返人员核查任务</h1>
{f'<div class="card error" role="alert">{escape(error)}</div>' if error else ""}
<div class="card"><dl>
<dt>状态</dt><dd id="state">{escape(STATE_LABELS.get(task.state, task.state))}</dd>
<dt>人员</dt><dd>{escape(task.summary)}</dd>
<dt>确认时限</dt><dd>{_local(task.deadline_at)}</dd>
{f"<dt>管控措施</dt><dd>{escape(measure)}</dd>" if measure else ""}
</dl></div>
{f'<div class="card"><dt>上报记录</dt><ul>{went_up}</ul></div>' if went_up else ""}
<div class="card" id="actions">{"".join(buttons) or "<p>当前无需操作。</p>"}</div>
{_check_in_form(task, query) if task.state == TaskState.UNDER_CONTROL else ""}"""
    return _shell("核查任务", body)


def _check_in_form(task: storage.Task, query: str) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="symptom" value="{escape(s)}">{escape(s)}</label> '
        for s in SYMPTOMS
    )
    code = check_in_code(task.task_id)
    # A JSON string inside the script: no HTML escaping applies there.
    target = json.dumps(f"/t/{task.task_id}/check-in?{query}")
    return f"""<div class="card" id="check-in"><dt>健康打卡（短信回复码 {code}）</dt>
<form id="check-in-form"><label>体温（℃）<input name="temperature" type="number" step="0.1"
min="34" max="43" inputmode="decimal"></label><div>{boxes}</div>
<button type="submit">提交打卡</button></form><p id="check-in-result" role="status"></p></div>
<script>
document.getElementById("check-in-form").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const form = event.target;
  const body = {{
    submission_id: crypto.randomUUID(),
    temperature: form.temperature.value ? Number(form.temperature.value) : null,
    symptoms: [...form.querySelectorAll("input[name=symptom]:checked")].map((b) => b.value),
  }};
  const response = await fetch({target}, {{
    method: "POST", headers: {{"Content-Type": "application/json"}}, body: JSON.stringify(body),
  }});
  const answer = await response.json();
  document.getElementById("check-in-result").textContent = !response.ok
    ? "打卡失败：" + answer.detail
    : answer.abnormal ? "已提交，异常情况已报社区和卫生院：" + answer.abnormal : "已提交，谢谢。";
}});
</script>"""


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
        return _shell("操作无效", '<div class="card error" role="alert">不支持此操作。</div>', 400)
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
