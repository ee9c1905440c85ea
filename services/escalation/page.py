"""The task page: opened from a notice's link on a phone, in Chinese, no password.

Each link names one recipient and the holder of the task when it was sent (`gridline.links`). A
cadre's or an office's link shows the task and the actions its state allows now; each action is
a plain form POST back to the same link, recorded in the audit trail under the recipient's role
and name through the `page` channel. A micro-grid leader's or a health centre's link only shows
what they need, and every POST through it is refused. A link issued before the task went to
another holder is refused, saying so.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, urlencode

import grpc
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridline.contracts.enums import CHAIN_LEVEL_ZH
from gridline.links import ROLE_ZH, Grant, PageLinks
from gridline.pages import Pages
from gridline.problems import ProblemError
from gridline.signed_links import LinkRefused
from gridline.timestamps import now, zh_time
from services.escalation import check_in_flows, flows, storage
from services.escalation.check_ins import SYMPTOMS, CheckInRefused
from services.escalation.domain import (
    ACTION_LABELS,
    STATE_LABELS,
    TEST_RESULT_ZH,
    UNDER_MEASURE,
    Action,
    ChangeRefused,
    Measure,
    TestResult,
    TransitionRefused,
    allowed_actions,
)
from services.escalation.schemas import CheckInOut, LinkCheckInIn

router = APIRouter(tags=["task page"], include_in_schema=False)

PAGES = Pages(Path(__file__).parent / "templates")

# What the page offers; reassignment and triage stay with the community's tools.
PAGE_ACTIONS = (
    Action.ACKNOWLEDGE,
    Action.RECORD_VISIT,
    Action.START_MEASURE,
    Action.END_MEASURE,
    Action.CLOSE,
    Action.RECORD_TEST,
    Action.REQUEST_EARLY_END,
    Action.APPROVE_EARLY_END,
    Action.REFUSE_EARLY_END,
    Action.RECORD_LEFT,
    Action.RECORD_NOT_FOUND,
    Action.TO_HOSPITAL,
    Action.TO_ISOLATION,
)
# The actions whose form asks for a line of text (sent as `note`), and what it asks.
NOTE_PROMPTS = {Action.REQUEST_EARLY_END: "提前解除的理由", Action.RECORD_LEFT: "去向（目的地）"}
MEASURE_LABELS = {Measure.QUARANTINE: "居家隔离", Measure.MONITORING: "居家健康监测"}
REFUSALS = {
    "invalid": (
        status.HTTP_403_FORBIDDEN,
        "链接无效",
        "此链接无效或已被改动，请使用通知中的原始链接。",
    ),
    "expired": (
        status.HTTP_410_GONE,
        "链接已过期",
        "此链接已过期，请使用最近一条任务通知中的链接，或联系社区。",
    ),
    "handed_over": (
        status.HTTP_403_FORBIDDEN,
        "任务已移交",
        "此任务{since}已移交他人办理，您收到的链接已失效。如需了解情况，请联系社区。",
    ),
    "view_only": (
        status.HTTP_403_FORBIDDEN,
        "仅供查看",
        "此链接是发给{role}的查看链接，只能了解任务情况，不能办理。如需协助，请联系包户干部。",
    ),
}

Measurement = Annotated[str, Query(max_length=20)]


def _local(moment: datetime | None) -> str:
    return "—" if moment is None else zh_time(moment)


def _message(title: str, text: str, status_code: int, heading: bool = True) -> HTMLResponse:
    return PAGES.response(
        "message.html", status_code, title=title, heading=title if heading else "", text=text
    )


class Refusal(Exception):
    """A link that does not let its bearer in, with what the page says about it."""

    def __init__(
        self, reason: str, grant: Grant | None = None, task: storage.Task | None = None
    ) -> None:
        self.reason = reason
        self.status_code, self.title, text = REFUSALS[reason]
        since = task.handed_over_at if task is not None else None
        self.text = text.format(
            since=f"于{zh_time(since)}" if since is not None else "",
            role=ROLE_ZH[grant.role] if grant is not None else "",
        )
        super().__init__(self.title)

    def page(self) -> HTMLResponse:
        """The refusal as a page."""
        return _message(self.title, self.text, self.status_code)

    def problem(self) -> ProblemError:
        """The refusal as a problem, for the page's JSON form (`link.<reason>`); the page's
        script shows its detail."""
        return ProblemError(self.status_code, f"link.{self.reason}", self.text, title=self.title)


def _buttons(task: storage.Task, grant: Grant) -> list[tuple[str, str, str]]:
    """Each action the page offers now: the URL its form posts to, its label, and what its
    text field asks for ("" when it has none)."""
    found = []
    authority = flows.LINK_AUTHORITY.get(grant.role, 0)
    for action in allowed_actions(task.state, authority=authority):
        if action not in PAGE_ACTIONS:
            continue
        if action is Action.END_MEASURE and task.measure_ends_at and now() < task.measure_ends_at:
            continue  # before its end a measure is ended only on an approved request
        target = f"/t/{task.task_id}/{action.value}?{grant.query}"
        if action is Action.START_MEASURE:
            found += [
                (f"{target}&{urlencode({'m': measure})}", f"开始{label}", "")
                for measure, label in MEASURE_LABELS.items()
            ]
        elif action is Action.RECORD_TEST:
            found += [
                (f"{target}&{urlencode({'tr': result})}", f"核酸检测结果：{label}", "")
                for result, label in TEST_RESULT_ZH.items()
            ]
        else:
            found.append((target, ACTION_LABELS[action], NOTE_PROMPTS.get(action, "")))
    return found


def _page(
    task: storage.Task, escalations: list[storage.Escalation], grant: Grant, error: str = ""
) -> HTMLResponse:
    acts = grant.acts
    check_in = None
    # The check-in code lets anyone report for the resident: only those who act see it.
    if acts and task.state in UNDER_MEASURE:
        check_in = {
            "code": task.check_in_code or "",
            "symptoms": SYMPTOMS,
            "target": f"/t/{task.task_id}/check-in?{grant.query}",
        }
    return PAGES.response(
        "task.html",
        title="核查任务",
        error=error,
        # A neighbour sees who arrived, where, and the measure: not the cadre's deadline nor the
        # reasons it went up (a fever among them).
        view_only=None if acts else ROLE_ZH[grant.role],
        state=STATE_LABELS.get(task.state, task.state),
        summary=task.summary,
        deadline=_local(task.deadline_at) if acts else None,
        verify_by=_local(task.verify_by) if acts and task.verify_by else None,
        measure=MEASURE_LABELS.get(Measure(task.measure)) if task.measure else None,
        measure_period=(
            f"{_local(task.measure_started_at)} 至 {_local(task.measure_ends_at)}"
            if task.measure_started_at and task.measure_ends_at
            else None
        ),
        went_up=[
            (_local(e.raised_at), CHAIN_LEVEL_ZH.get(e.level, ""), e.reason)
            for e in (escalations if acts else [])
        ],
        buttons=_buttons(task, grant) if acts else [],
        check_in=check_in,
    )


async def _load(request: Request, task_id: str) -> tuple[storage.Task, list[storage.Escalation]]:
    async with request.app.state.db.session() as session:
        task = await storage.get_task(session, task_id)
        if task is None:
            raise flows.TaskNotFound(task_id)
        return task, list(await storage.escalations_of(session, task_id))


async def _admit(
    request: Request, task_id: str, *, acting: bool = False
) -> tuple[Grant, storage.Task, list[storage.Escalation]]:
    """What the request's link grants and the task it opens, with its escalations.

    Refusal when the link was tampered with or expired, the task went to another holder since
    it was issued, or (`acting`) it only shows the task.
    """
    links: PageLinks = request.app.state.links
    try:
        grant = links.check(task_id, request.query_params, now())
    except LinkRefused as refused:
        raise Refusal(refused.reason) from refused
    if acting and not grant.acts:
        raise Refusal("view_only", grant)
    try:
        task, escalations = await _load(request, task_id)
    except flows.TaskNotFound as missing:
        raise Refusal("invalid") from missing
    try:
        grant.check_holder(task.assignee_group_id, task.handed_over_at)
    except LinkRefused as refused:
        raise Refusal(refused.reason, grant, task) from refused
    return grant, task, escalations


async def _actor(request: Request, task: storage.Task, grant: Grant) -> str:
    """Who acts through the link, for the audit trail: its recipient's role, name and id."""
    try:
        # Asked with no transaction open; the Directory's chain of the task names its people.
        chain = await request.app.state.chain_of(task.node_id)
    except grpc.aio.AioRpcError:
        chain = []  # unreachable now: the role and id still name the recipient
    names = [r.person_name for r in chain if r.person_id and r.person_id == grant.recipient]
    names += [r.group_name for r in chain if r.group_id == grant.recipient]
    name = next((n for n in names if n), "")
    return f"{ROLE_ZH[grant.role]}{name}（{grant.recipient}）"


async def _form_note(request: Request) -> str:
    """The `note` field of a plain form post (a reason, a destination), "" without one."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return ""
    fields = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    return fields.get("note", [""])[0].strip()[:500]


@router.get("/t/{task_id}", response_class=HTMLResponse)
async def task_page(task_id: str, request: Request) -> Response:
    """The task, and for those who act on it the actions allowed now."""
    try:
        grant, task, escalations = await _admit(request, task_id)
    except Refusal as refusal:
        return refusal.page()
    return _page(task, escalations, grant)


@router.post("/t/{task_id}/check-in")
async def task_page_check_in(task_id: str, body: LinkCheckInIn, request: Request) -> CheckInOut:
    """A check-in from the phone link; a fever or listed symptom tells people at once."""
    try:
        await _admit(request, task_id, acting=True)
    except Refusal as refusal:
        raise refusal.problem() from refusal
    try:
        check_in, sent = await check_in_flows.take(
            request.app.state.db, request.app.state.check_ins, request.app.state.chain_of,
            task_id=task_id, temperature=body.temperature, symptoms=body.symptoms,
            channel="link", source_id=body.submission_id, moment=now(),
            links=request.app.state.links,
        )  # fmt: skip
    except CheckInRefused as exc:
        raise ProblemError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "check_in.refused", str(exc)
        ) from exc
    return CheckInOut(**check_in.model_dump(), notified=len(sent))


@router.post("/t/{task_id}/{action}", response_class=HTMLResponse)
async def task_page_action(
    task_id: str, action: str, request: Request, m: Measurement = "", tr: Measurement = ""
) -> Response:
    """Apply one action from the page, then show the page again (or why it was refused).

    `m` is the measure started, `tr` the test result recorded; a form's text (a reason, a
    destination) comes as its `note` field.
    """
    try:
        grant, task, _ = await _admit(request, task_id, acting=True)
    except Refusal as refusal:
        return refusal.page()
    try:
        chosen = Action(action)
        if chosen not in PAGE_ACTIONS:
            raise ValueError(action)
        measure = Measure(m) if chosen is Action.START_MEASURE else None
        result = TestResult(tr) if chosen is Action.RECORD_TEST else None
    except ValueError:
        return _message("操作无效", "不支持此操作。", 400, heading=False)
    note = await _form_note(request)
    change = flows.Change(
        chosen, actor=await _actor(request, task, grant), channel="page", measure=measure,
        result=result, note=note, authority=flows.LINK_AUTHORITY.get(grant.role, 0),
    )  # fmt: skip

    def still_held(locked: storage.Task) -> None:
        # Asked again under the row lock: a hand-over since the read above voids the link.
        try:
            grant.check_holder(locked.assignee_group_id, locked.handed_over_at)
        except LinkRefused as refused:
            raise Refusal(refused.reason, grant, locked) from refused

    try:
        await flows.change_task(
            request.app.state.db, request.app.state.policy, task_id, change,
            check_ins=request.app.state.check_ins, guard=still_held,
            links=request.app.state.links,
        )  # fmt: skip
    except Refusal as refusal:
        return refusal.page()
    except flows.TaskNotFound:
        return Refusal("invalid").page()
    except TransitionRefused as exc:
        task, escalations = await _load(request, task_id)
        state = STATE_LABELS.get(exc.state, exc.state)
        text = f"当前状态为「{state}」，不能{ACTION_LABELS[chosen]}。"
        return _page(task, escalations, grant, error=text)
    except ChangeRefused as exc:
        task, escalations = await _load(request, task_id)
        return _page(task, escalations, grant, error=f"{exc}。")
    return RedirectResponse(f"/t/{task_id}?{grant.query}", status_code=status.HTTP_303_SEE_OTHER)
