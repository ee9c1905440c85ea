"""Intake's HTTP routes: one report, a batch of records."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from gridline.problems import ProblemError, field_problems, instance_of, invalid, problem
from gridline.staff.http import STAFF_RESPONSES, forbidden, requires
from gridline.staff.identity import Forbidden, Staff
from gridline.staff.roles import Level, Permission
from services.intake import metrics
from services.intake.auth import (
    NONCE_TTL_SECONDS,
    Signed,
    authenticate,
    nonce_refused,
    require_scope,
    verify_signature,
)
from services.intake.integrators import Caller
from services.intake.problems import TAG_ERRORS, Problem, problems_from
from services.intake.ratelimit import NonceReused, TokenBucket, over_limit
from services.intake.schemas import (
    SOURCE_NAMES,
    CadreVisitReport,
    ReportAcceptedOut,
    ReportIn,
    parse_report,
)
from services.intake.status import ReportStatusOut, StatusUnknown, report_status
from services.intake.submission import Status, Submission, Submitter

_PREFIX = "/v1"
router = APIRouter(prefix=_PREFIX, tags=["reports"])
# A batch may be larger than a single report (GRIDLINE_INTAKE_BATCH_MAX_BODY_BYTES).
BATCH_PATH = f"{_PREFIX}/reports:batch"

# How long a client should wait before retrying when the broker could not confirm.
RETRY_AFTER_SECONDS = "5"
# A repeat of a record still being confirmed: its outcome is known within a confirm timeout.
IN_PROGRESS_RETRY_AFTER_SECONDS = "1"
MAX_BATCH_RECORDS = 1000
# The operations that check the X-Gridline-* signature: the OpenAPI document says so (app.py).
SIGNED_OPERATIONS = frozenset({"create_report", "create_reports_batch", "get_report"})

# `?validate_only=true`: a query parameter rather than a header, so the signature covers it.
ValidateOnly = Annotated[
    bool,
    Query(
        description="Answer exactly as a real post would (status codes, per-record results, "
        "validation errors) but publish nothing and claim no idempotency keys; a record that "
        "would be accepted is `validated`, without a report id. A sandbox integrator's posts "
        "are always validate-only. The nonce is spent and the records count against the rate "
        "limit, as for a real post."
    ),
]

# Each a problem (application/problem+json) whose `rule` says which (docs/intake.md, Errors).
_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body could not be read (`body.too_deep`)."},
    401: {
        "description": "Unsigned where signatures are required, or the signature is refused "
        "(`signature.*`)."
    },
    403: {"description": "The key may not post this source (`source.not_allowed`)."},
    429: {"description": "Over the caller's rate limit (`rate_limit.*`); see Retry-After."},
    413: {"description": "The body is too large (`body.too_large`)."},
    503: {
        "description": "The broker could not confirm the record (`broker.unconfirmed`), or "
        "Redis is down (`redis.unavailable`); retry."
    },
}
# What a post that the broker could not confirm is told.
_UNCONFIRMED = "消息队列未能确认收到{what}，本次未受理，请稍后重试（重试不会产生重复报告）"


async def _admit(request: Request, signed: Signed | None, cost: int) -> None:
    """Spend a signed request's nonce (401 if spent before), then take `cost` from the rate
    of the caller (or, unsigned, its address): 429 with Retry-After when over it."""
    bucket: TokenBucket = request.app.state.rate_limit
    client = request.client.host if request.client else "unknown"
    subject = signed.caller.integrator_id if signed else f"addr:{client}"
    nonce = (signed.nonce_key, NONCE_TTL_SECONDS) if signed else None
    try:
        wait = await bucket.take(subject, cost, nonce)
    except NonceReused:
        raise nonce_refused() from None
    if wait is not None:
        raise over_limit(wait, "超出调用频率上限（每条记录计一次）")


def _integrator_of(signed: Signed | None) -> str:
    """Whose keys a request's records claim: its integrator's, or unsigned callers' together."""
    return signed.caller.integrator_id if signed else ""


def _refuse_unsettled(sub: Submission) -> None:
    """A single report the broker did not confirm (503, post it again) or that the same key is
    confirming right now (409): refused, with when to try again."""
    if sub.status == "unavailable":
        raise ProblemError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "broker.unconfirmed",
            _UNCONFIRMED.format(what="此报告"),
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if sub.status == "in_progress":
        raise ProblemError(
            status.HTTP_409_CONFLICT,
            "report.in_progress",
            "同一条记录正在确认中，请稍后重试",
            headers={"Retry-After": IN_PROGRESS_RETRY_AFTER_SECONDS},
        )


async def _submit(
    request: Request, signed: Signed | None, validate_only: bool, submissions: list[Submission]
) -> None:
    """Submit the records, or only validate them: asked for, or the caller is a sandbox."""
    submitter: Submitter = request.app.state.submitter
    if validate_only or (signed is not None and signed.caller.sandbox):
        await submitter.validate(submissions)
    else:
        await submitter.submit(submissions)


@router.post(
    "/reports",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_report",
    responses={
        200: {"model": ReportAcceptedOut, "description": "A checkpoint scan that is no report."},
        409: {
            "description": "The same record is being confirmed right now "
            "(`report.in_progress`); retry shortly."
        },
        **_REFUSALS,
    },
)
async def create_report(
    report: ReportIn,
    request: Request,
    response: Response,
    signed: Annotated[Signed | None, Depends(verify_signature)],
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=128)] = None,
    validate_only: ValidateOnly = False,
) -> ReportAcceptedOut:
    """Accept one report; answers 202 only once the broker holds it (validate-only: once
    it would have been accepted, with nothing published).

    A repeat of the Idempotency-Key or of (source, source_record_id) by the same integrator
    gets the original id back; another integrator's keys and record ids are its own.
    """
    require_scope(signed.caller if signed else None, [report.source])
    await _admit(request, signed, 1)
    sub = Submission(
        report=report, idempotency_key=idempotency_key, integrator_id=_integrator_of(signed)
    )
    await _submit(request, signed, validate_only, [sub])
    _refuse_unsettled(sub)
    if sub.status == "cleared":
        response.status_code = status.HTTP_200_OK
        return ReportAcceptedOut(status="cleared")
    if sub.status == "validated":
        return ReportAcceptedOut(status="validated")
    response.headers["Location"] = f"/v1/reports/{sub.report_id}"
    return ReportAcceptedOut(report_id=sub.report_id, replayed=sub.status == "duplicate")


@router.get(
    "/reports/{report_id}",
    operation_id="get_report",
    responses={
        404: {
            "description": "No service knows this report, or another integrator posted it "
            "(`report.not_found`)."
        },
        503: {
            "description": "Intake does not remember it and the services cannot be asked "
            "(`report.status_unavailable`)."
        },
        401: _REFUSALS[401],
        429: {"description": "Too many unknown keys from this address; see Retry-After."},
    },
)
async def get_report(
    report_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    request: Request,
    caller: Annotated[Caller | None, Depends(authenticate)],
) -> ReportStatusOut:
    """What became of a report: accepted, placed on which node, and its tasks' state.

    Asks assignment's Directory and escalation's Tasks; a service that cannot be reached is
    named in `unavailable` and the rest is still answered. A signed caller sees only the
    reports its integrator posted (while intake remembers them, `idempotency_ttl_seconds`).
    """
    state = request.app.state
    try:
        found = await report_status(
            report_id, state.redis, state.directory, state.tasks,
            integrator_id=caller.integrator_id if caller else None,
        )  # fmt: skip
    except StatusUnknown as unknown:
        raise ProblemError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "report.status_unavailable",
            str(unknown),
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None
    if found is None:
        raise ProblemError(
            status.HTTP_404_NOT_FOUND,
            "report.not_found",
            f"没有编号为“{report_id}”的报告，或它不是用您的密钥推送的",
        )
    return found


class RecordResult(BaseModel):
    """What became of one record of a batch."""

    index: int = Field(description="Position of the record in `records`.")
    status: Status | Literal["rejected"] = Field(
        description="accepted: on the topic; duplicate: seen before, `report_id` is the "
        "original; cleared: a scan that is no report; rejected: see `problems`; in_progress "
        "or unavailable: not accepted, post it again; validated: would have been accepted "
        "(validate-only), nothing was published."
    )
    report_id: str | None = None
    problems: list[Problem] = Field(default_factory=list)


class BatchOut(BaseModel):
    """Per-record results of a batch, and their counts."""

    counts: dict[str, int] = Field(description="Records by status.")
    results: list[RecordResult]


def _batch_schema() -> dict[str, Any]:
    """The documented body: the record shapes of the single endpoint, up to 1,000 of them."""
    refs = {
        "health_code_feed": "HealthCodeFeedReport",
        "self_report": "SelfReport",
        "cadre_visit": "CadreVisitReport",
        "checkpoint_scan": "CheckpointScan",
        "neighbour": "NeighbourReport",
    }
    return {
        "type": "object",
        "required": ["records"],
        "additionalProperties": False,
        "properties": {
            "records": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH_RECORDS,
                "items": {
                    "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in refs.values()],
                    "discriminator": {
                        "propertyName": "source",
                        "mapping": {s: f"#/components/schemas/{n}" for s, n in refs.items()},
                    },
                },
            }
        },
    }


@router.post(
    BATCH_PATH.removeprefix(_PREFIX),
    operation_id="create_reports_batch",
    responses={
        200: {"model": BatchOut},
        422: {"description": "The body is not a batch."},
        **_REFUSALS,
        503: {
            "description": "Some records could not be confirmed (`broker.unconfirmed`): a "
            "problem that also carries `counts` and `results` as a 200 would; or Redis is "
            "down (`redis.unavailable`). Post the batch again."
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _batch_schema()}},
        }
    },
)
async def create_reports_batch(
    request: Request,
    signed: Annotated[Signed | None, Depends(verify_signature)],
    validate_only: ValidateOnly = False,
) -> JSONResponse:
    """Accept up to 1,000 records (5 MiB); each gets its own result.

    Valid records are accepted even when others are refused. A repeat of (source,
    source_record_id) by the same integrator is answered `duplicate` with the original id and
    produces nothing, so a whole batch can be posted again after a 503 or a lost answer.
    """
    records = _records(await request.body())
    require_scope(
        signed.caller if signed else None,
        {r["source"] for r in records if isinstance(r, dict) and r.get("source") in SOURCE_NAMES},
    )
    await _admit(request, signed, len(records))
    # Results are built as plain dicts in BatchOut's shape: a thousand models would cost more
    # than the rest of the answer.
    results: list[dict[str, Any]] = []
    submissions: list[tuple[int, Submission]] = []
    integrator_id = _integrator_of(signed)
    for index, record in enumerate(records):
        try:
            report = parse_report(record)
        except ValidationError as error:
            problems = problems_from(error.errors(), prefix=f"records[{index}]")
            _count_rejected(record, [p.rule for p in problems])
            results.append(_result(index, "rejected", None, [p.model_dump() for p in problems]))
            continue
        submissions.append((index, Submission(report=report, integrator_id=integrator_id)))
    await _submit(request, signed, validate_only, [sub for _, sub in submissions])
    results.extend(_result(i, sub.status, sub.report_id) for i, sub in submissions)
    results.sort(key=lambda r: int(r["index"]))
    counts: dict[str, int] = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    body = {"counts": counts, "results": results}
    if counts.get("unavailable"):
        # An error of the request, with what became of each record kept beside it.
        return problem(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "broker.unconfirmed",
            _UNCONFIRMED.format(what=f"其中{counts['unavailable']}条记录"),
            instance=instance_of(request.scope),
            headers={"Retry-After": RETRY_AFTER_SECONDS},
            extra=body,
        )
    return JSONResponse(body)


def _result(
    index: int, status: str, report_id: str | None, problems: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """One RecordResult as its JSON object."""
    return {"index": index, "status": status, "report_id": report_id, "problems": problems or []}


def _records(raw: bytes) -> list[Any]:
    """The `records` list of a batch body, or a 422 naming what is wrong with its shape."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise _shape_error("body", "json_invalid", f"不是合法的 JSON（{error}）") from None
    except RecursionError:
        # The reader recurses once per level: thousands of nested arrays exhaust it.
        raise _shape_error("body", "json_invalid", "JSON 嵌套层级过深，无法读取") from None
    if not isinstance(body, dict) or set(body) != {"records"}:
        raise _shape_error("body", "batch_shape", "请求体须为只含 records 一项的对象")
    records = body["records"]
    if not isinstance(records, list) or not records:
        raise _shape_error("records", "batch_shape", "records 须为非空数组")
    if len(records) > MAX_BATCH_RECORDS:
        raise _shape_error(
            "records",
            "batch_size",
            f"每批最多{MAX_BATCH_RECORDS}条记录，本批有{len(records)}条；请分批提交",
        )
    return records


def _shape_error(field: str, rule: str, message: str) -> RequestValidationError:
    loc = ("body",) if field == "body" else ("body", field)
    return RequestValidationError([{"loc": loc, "type": rule, "msg": message}])


def _count_rejected(record: Any, rules: list[str]) -> None:
    source = record.get("source") if isinstance(record, dict) else None
    label = source if source in SOURCE_NAMES else "unknown"
    metrics.REPORTS.labels(label, "rejected").inc()
    for rule in rules:
        metrics.VALIDATION_PROBLEMS.labels(label, rule).inc()


async def on_request_invalid(request: Request, error: Exception) -> JSONResponse:
    """The 422 problem of every service (`gridline.problems`), with the source tag left out of
    each field's path and rejections counted.

    Each of its `errors` names the field (`phone`, `records`), the rule it broke
    (`phone.mainland_mobile`) and what is wrong.
    """
    assert isinstance(error, RequestValidationError)
    entries = []
    for entry in error.errors():
        loc = list(entry["loc"])
        if entry["type"] in TAG_ERRORS:
            loc.append("source")
        elif len(loc) > 1 and loc[0] == "body" and loc[1] in SOURCE_NAMES:
            del loc[1]
        entries.append({"loc": loc, "msg": entry["msg"], "type": entry["type"]})
    _count_rejected(error.body, [entry["type"] for entry in entries])
    return invalid(instance_of(request.scope), field_problems(entries))


# A cadre's report from the staff workbench: the path of the intake staff route.
STAFF_REPORT_PATH = "/staff/reports"


@router.post(
    STAFF_REPORT_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_staff_report",
    responses={**STAFF_RESPONSES, 503: {"description": "The broker could not confirm it."}},
)
async def create_staff_report(
    report: CadreVisitReport,
    request: Request,
    staff: Annotated[Staff, Depends(requires(Permission.TASKS_ACT))],
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=128)] = None,
) -> ReportAcceptedOut:
    """An arrival a cadre found on a visit (入户排摸), posted as the signed-in cadre (the staff
    workbench forwards the person's token): the same validation as every report, the cadre
    taken from the token, keys and record ids the person's own."""
    if staff.level is not Level.GRID:
        raise forbidden(
            Forbidden("入户排摸发现的来返人员由包户干部或联络员登记"), "staff.forbidden"
        )
    sub = Submission(
        report=report.model_copy(update={"cadre_id": staff.subject[:64]}),
        idempotency_key=idempotency_key,
        integrator_id=f"staff:{staff.subject}",
    )
    await _submit(request, None, False, [sub])
    _refuse_unsettled(sub)
    return ReportAcceptedOut(report_id=sub.report_id, replayed=sub.status == "duplicate")
