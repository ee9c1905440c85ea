"""The cadre's forms, made for a phone: an arrival found on a visit (来人登记) and the day's
zero report (零报告) of their grid.

An arrival is posted to intake's staff route as the cadre, with the person's own token: intake
validates it as every report (ID number, phone, origin) and it goes the way every report goes
(placed, assigned, told), its source a cadre's visit (入户排摸). The zero report is stored by
`zero_report_flows.submit` as the API stores it, the person's name in its `actor`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import grpc
import httpx
from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridline.staff.identity import Staff
from gridline.staff.roles import Permission
from gridline.timestamps import SHANGHAI, now, zh_date
from services.escalation import zero_report_flows
from services.escalation.workbench.session import (
    PREFIX,
    PageStaff,
    form_fields,
    in_grid,
    names_of,
    render,
    staff_token,
)
from services.escalation.zero_reports import Counts, Schedule

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Where intake takes a cadre's report (its staff route, `services.intake.routes`).
INTAKE_STAFF_REPORTS = "/v1/staff/reports"
RISKS = (("low", "低风险地区"), ("medium", "中风险地区"), ("high", "高风险地区"))
TRANSPORTS = ("自驾", "火车", "飞机", "长途客车", "其他")
# The form's fields as intake names them, and as the form labels them.
FIELD_LABELS = {
    "name": "姓名",
    "id_number": "身份证号",
    "phone": "联系电话",
    "origin_name": "来源地",
    "origin_region_code": "来源地",
    "origin_risk": "来源地风险等级",
    "arrived_at": "到达时间",
    "address": "现住址",
    "transport": "交通方式",
}
COUNT_LIMIT = 10_000
# A refusal's own words are shown only when they are Chinese.
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _not_for(request: Request, staff: Staff, active: str, title: str) -> HTMLResponse:
    return render(
        request, staff, "message.html", active=active, title=title,
        text="此表由包户干部、联络员填报。", status_code=status.HTTP_403_FORBIDDEN,
    )  # fmt: skip


def _arrival_page(
    request: Request,
    staff: Staff,
    values: dict[str, str],
    errors: list[str],
    done: str = "",
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    return render(
        request, staff, "arrival.html", active="arrival", title="来人登记",
        values=values, errors=errors, done=done, risks=RISKS, transports=TRANSPORTS,
        submission=values.get("submission") or str(uuid.uuid4()), status_code=status_code,
    )  # fmt: skip


@router.get("/arrival", response_class=HTMLResponse)
async def arrival_form(request: Request, staff: PageStaff, done: str = "") -> HTMLResponse:
    """The form for an arrival found on a visit."""
    if not in_grid(staff):
        return _not_for(request, staff, "arrival", "来人登记")
    return _arrival_page(request, staff, {}, [], done=done[:100])


def report_body(values: dict[str, str], staff: Staff) -> dict[str, Any]:
    """What the form says, as intake's cadre-visit report (the arrival time in Beijing time)."""
    arrived = values.get("arrived_at", "")
    try:
        arrived_at = datetime.fromisoformat(arrived).replace(tzinfo=SHANGHAI).isoformat()
    except ValueError:
        arrived_at = arrived
    body: dict[str, Any] = {
        "source": "cadre_visit",
        "cadre_id": staff.subject[:64],
        "name": values.get("name", ""),
        "id_number": values.get("id_number", ""),
        "phone": values.get("phone", ""),
        "origin_name": values.get("origin_name", "") or None,
        "origin_risk": values.get("origin_risk", ""),
        "arrived_at": arrived_at,
        "address": values.get("address", ""),
    }
    if values.get("transport"):
        body["transport"] = values["transport"]
    return body


def refusals(answer: dict[str, Any]) -> list[str]:
    """Intake's refusal as lines the cadre reads: each refused field by its label."""
    fields = answer.get("errors") or []
    lines = []
    for error in fields:
        label = FIELD_LABELS.get(str(error.get("field", "")).split(".")[0], "填写内容")
        detail = str(error.get("detail", ""))
        lines.append(f"{label}：{detail if CHINESE.search(detail) else '填写有误，请核对'}")
    return lines or [str(answer.get("detail") or "登记未被受理，请核对后重试。")]


@router.post("/arrival")
async def file_arrival(request: Request, staff: PageStaff) -> Response:
    """Post the arrival to intake as the cadre; back to an empty form once it is accepted."""
    if not in_grid(staff):
        return _not_for(request, staff, "arrival", "来人登记")
    values = await form_fields(request)
    base: str = request.app.state.intake_staff_url
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            response = await client.post(
                INTAKE_STAFF_REPORTS,
                json=report_body(values, staff),
                headers={
                    "Authorization": f"Bearer {staff_token(request)}",
                    "Idempotency-Key": values.get("submission", "") or str(uuid.uuid4()),
                },
            )
    except httpx.HTTPError:
        return _arrival_page(
            request, staff, values, ["暂时无法连接报告受理服务，请稍后重试。"], status_code=503
        )
    if response.status_code != status.HTTP_202_ACCEPTED:
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return _arrival_page(
            request, staff, values, refusals(answer), status_code=response.status_code
        )
    done = f"已登记{values.get('name', '')[:1]}某，系统将按住址分派核查任务"
    return RedirectResponse(f"{PREFIX}/arrival?done={done}", status.HTTP_303_SEE_OTHER)


def _zero_page(
    request: Request,
    staff: Staff,
    *,
    error: str = "",
    done: str = "",
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    schedule: Schedule = request.app.state.schedule
    day = schedule.day_of(now())
    return render(
        request, staff, "zero_report.html", active="zero_report", title="零报告",
        day=zh_date(day), grid=names_of(request).known(staff.node_id) or "本网格",
        error=error, done=done, status_code=status_code,
    )  # fmt: skip


@router.get("/zero-report", response_class=HTMLResponse)
async def zero_report_form(request: Request, staff: PageStaff, done: str = "") -> HTMLResponse:
    """The day's zero report of the person's grid."""
    if not (in_grid(staff) and staff.may(Permission.ZERO_REPORTS_SUBMIT)):
        return _not_for(request, staff, "zero_report", "零报告")
    return _zero_page(request, staff, done=done[:100])


def counts_of(values: dict[str, str]) -> Counts:
    """The form's counts (ValueError naming the field for one that is not a whole number in
    range)."""
    found = []
    for field, label in (
        ("arrivals", "今日新增来返人员"),
        ("under_control", "在管控人数"),
        ("abnormal", "发热等异常人数"),
    ):
        text = values.get(field, "") or "0"
        if not text.isdigit() or int(text) > COUNT_LIMIT:
            raise ValueError(f"{label}应填写0至{COUNT_LIMIT}之间的整数")
        found.append(int(text))
    return Counts(*found)


@router.post("/zero-report")
async def file_zero_report(request: Request, staff: PageStaff) -> Response:
    """Store the grid's report of the day; a second one the same day replaces the first."""
    if not (in_grid(staff) and staff.may(Permission.ZERO_REPORTS_SUBMIT)):
        return _not_for(request, staff, "zero_report", "零报告")
    try:
        counts = counts_of(await form_fields(request))
    except ValueError as refused:
        return _zero_page(request, staff, error=f"{refused}。", status_code=422)
    try:
        place = await request.app.state.place_of(staff.node_id)
    except grpc.aio.AioRpcError:
        return _zero_page(
            request, staff, error="暂时无法连接网格目录，请稍后重试。", status_code=503
        )
    schedule: Schedule = request.app.state.schedule
    moment = now()
    day = schedule.day_of(moment)
    await zero_report_flows.submit(
        request.app.state.db, schedule, staff.node_id, day, counts,
        actor=staff.audit_name, channel="workbench", moment=moment, place=place,
    )  # fmt: skip
    done = f"已报送{zh_date(day)}零报告" if counts == Counts() else f"已报送{zh_date(day)}日报"
    return RedirectResponse(f"{PREFIX}/zero-report?done={done}", status.HTTP_303_SEE_OTHER)
