"""The resident self-report page (`/report`): a mobile page in Chinese and its form endpoint.

No login: each address may post a few reports an hour, and a hidden honeypot field that people
never see but form-filling bots do is answered as if accepted while nothing is produced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError

from gridline.ids import new_id
from gridline.pages import Pages
from gridline.personal import mask_id_number, mask_name, mask_phone
from gridline.problems import FieldProblem, ProblemError, instance_of, invalid
from services.intake import metrics
from services.intake.problems import problems_from
from services.intake.ratelimit import TokenBucket, over_limit
from services.intake.schemas import parse_report
from services.intake.submission import Submission, Submitter

router = APIRouter(include_in_schema=False)
PAGES = Pages(Path(__file__).parent / "templates")
HONEYPOT_FIELD = "website"
RETRY_AFTER_SECONDS = "5"

# What residents read for the rules the page cannot check itself. An ambiguous origin keeps
# its own message, which lists the places the name may mean.
_CHINESE = {
    "origin.unknown_name": "未找到该地名，请写到区县，如“上海市浦东新区”",
    "id_number.region": "身份证号码前六位地区码不正确",
    "id_number.birth_date": "身份证号码中的出生日期不正确",
    "id_number.check_digit": "身份证号码校验位不正确",
    "phone.mainland_mobile": "请填写11位手机号码",
    "arrived_at.future": "到达时间不能晚于现在",
    "missing": "请填写此项",
}


@router.get("/report", response_class=HTMLResponse)
async def report_page() -> HTMLResponse:
    """The self-report form."""
    return PAGES.response("report.html")


@router.post("/report")
async def submit_report_page(request: Request) -> JSONResponse:
    """A resident's own report: validated like every report, answered with what was received."""
    bucket: TokenBucket = request.app.state.self_report_limit
    client = request.client.host if request.client else "unknown"
    wait = await bucket.take(client)
    if wait is not None:
        raise over_limit(wait, "此地址提交过于频繁")
    try:
        form: Any = await request.json()
    except ValueError:
        form = None
    if not isinstance(form, dict):
        problem = FieldProblem(field="body", rule="form_shape", detail="表单格式不正确")
        return invalid(instance_of(request.scope), [problem])
    if form.pop(HONEYPOT_FIELD, ""):
        metrics.HONEYPOT_CAUGHT.inc()
        return JSONResponse({"report_id": new_id()}, status_code=202)
    try:
        report = parse_report({**form, "source": "self_report"})
    except ValidationError as error:
        metrics.REPORTS.labels("self_report", "rejected").inc()
        # The page shows each `detail` under its field (`errors[].field`), in Chinese.
        return invalid(
            instance_of(request.scope),
            [
                FieldProblem(field=p.field, rule=p.rule, detail=_CHINESE.get(p.rule, p.message))
                for p in problems_from(error.errors())
            ],
        )
    submission = Submission(report=report)
    submitter: Submitter = request.app.state.submitter
    await submitter.submit([submission])
    if submission.status not in ("accepted", "duplicate"):
        raise ProblemError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "broker.unconfirmed",
            "暂时无法提交，请稍后再试",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    arrived = report.arrived_at
    return JSONResponse(
        {
            "report_id": submission.report_id,
            "name": mask_name(report.name),
            "id_number": mask_id_number(report.id_number),
            "phone": mask_phone(report.phone),
            "origin": report.origin_name,
            "arrived_at": f"{arrived:%Y-%m-%d %H:%M} (UTC{arrived:%z})",
            "address": report.address,
        },
        status_code=202,
    )
