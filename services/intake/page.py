"""The self-report page (`/report`) for anyone arriving (来返人员): a mobile page in Chinese, with
what is collected, why, who sees it and how long it is kept, and its form endpoint.

No login: each address may post a few reports an hour, and a hidden honeypot field that people
never see but form-filling bots do is answered as if accepted while nothing is produced.

The resident says where they came from, not how risky it is: the county's risk-area list
decides that where the report is placed (assignment's `risk.decide`), and a place the list does
not name is low risk, as the national designation has it. So every self-report goes out as low
and a risk a form posts is not taken.
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
from gridline.settings import Settings
from gridline.timestamps import zh_time
from services.intake import metrics
from services.intake.problems import problems_from
from services.intake.ratelimit import TokenBucket, over_limit
from services.intake.schemas import parse_report
from services.intake.submission import Submission, Submitter

router = APIRouter(include_in_schema=False)
PAGES = Pages(Path(__file__).parent / "templates")
HONEYPOT_FIELD = "website"
RETRY_AFTER_SECONDS = "5"

# The risk every self-report carries (see above): the risk-area list decides.
SELF_REPORT_RISK = "low"

# What residents read for each rule a field can break (the rules' own messages are written for
# integrators, in English). An ambiguous origin keeps its own Chinese message, which lists the
# places the name may mean; a rule not listed here reads as a wrong value of its field.
_CHINESE = {
    "origin.unknown_name": "未找到该地名，请写到区县，如“上海市浦东新区”",
    "origin.missing": "请填写从哪里来",
    "id_number.length": "身份证号码应为18位",
    "id_number.format": "身份证号码应为18位，最后一位可为X",
    "id_number.region": "身份证号码前六位地区码不正确",
    "id_number.birth_date": "身份证号码中的出生日期不正确",
    "id_number.check_digit": "身份证号码校验位不正确",
    "passport.format": "护照号码格式不正确",
    "hk_macau_permit.format": "通行证号码应为H或M加8位数字",
    "taiwan_permit.format": "通行证号码应为8位数字",
    "phone.mainland_mobile": "请填写11位手机号码",
    "arrived_at.future": "到达时间不能晚于现在",
    "missing": "请填写此项",
    "string_too_long": "内容过长，请精简",
    "string_too_short": "内容过短，请写完整",
    "datetime_parsing": "请选择到达的日期和时间",
    "datetime_from_date_parsing": "请选择到达的日期和时间",
    "timezone_aware": "请选择到达的日期和时间",
    "literal_error": "请从列表中选择",
    "extra_forbidden": "表单中有无法识别的内容，请刷新页面后重新填写",
    "string_type": "请填写文字",
}
_UNKNOWN_RULE = "填写的内容不符合要求，请核对"


def _said(rule: str, message: str) -> str:
    """A refused field's message as residents read it."""
    if rule in _CHINESE:
        return _CHINESE[rule]
    # Rules of ours written in Chinese (an ambiguous origin's list of places) say it best.
    return message if any("\u4e00" <= c <= "\u9fff" for c in message) else _UNKNOWN_RULE


@router.get("/report", response_class=HTMLResponse)
async def report_page(request: Request) -> HTMLResponse:
    """The self-report form, with its privacy notice."""
    settings: Settings = request.app.state.settings
    return PAGES.response("report.html", retention_days=settings.personal_data_retention_days)


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
        report = parse_report({**form, "source": "self_report", "origin_risk": SELF_REPORT_RISK})
    except ValidationError as error:
        metrics.REPORTS.labels("self_report", "rejected").inc()
        # The page shows each `detail` under its field (`errors[].field`), in Chinese.
        return invalid(
            instance_of(request.scope),
            [
                FieldProblem(field=p.field, rule=p.rule, detail=_said(p.rule, p.message))
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
    return JSONResponse(
        {
            "report_id": submission.report_id,
            "name": mask_name(report.name),
            "id_number": mask_id_number(report.id_number),
            "phone": mask_phone(report.phone),
            "origin": report.origin_name,
            "arrived_at": zh_time(report.arrived_at),
            "address": report.address,
        },
        status_code=202,
    )
