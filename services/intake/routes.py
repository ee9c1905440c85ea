"""Intake's HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, status

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import BrokerUnavailable
from gridline.ids import new_id
from gridline.timestamps import now
from services.intake import metrics
from services.intake.domain import report_event
from services.intake.schemas import ReportAcceptedOut, ReportIn

router = APIRouter(prefix="/v1", tags=["reports"])

# How long a client should wait before retrying when the broker could not confirm.
RETRY_AFTER_SECONDS = "5"


@router.post(
    "/reports",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_report",
    responses={
        413: {"description": "The body is too large."},
        503: {"description": "The broker could not confirm the record; retry after a while."},
    },
)
async def create_report(
    report: ReportIn,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> ReportAcceptedOut:
    """Accept one report; answers 202 only once the broker holds it."""
    state = request.app.state
    metrics.REPORTS_RECEIVED.labels(report.source).inc()
    report_id = new_id()
    redis_key = f"intake:idem:{idempotency_key}" if idempotency_key else None
    if redis_key:
        ttl = state.settings.idempotency_ttl_seconds
        if not await state.redis.set(redis_key, report_id, nx=True, ex=ttl):
            original = await state.redis.get(redis_key)
            metrics.REPORTS_DUPLICATE.labels(report.source).inc()
            return ReportAcceptedOut(report_id=original or report_id, replayed=True)
    event = report_event(
        report_id=report_id,
        accepted_at=now(),
        person_key_secret=state.settings.person_key_secret.get_secret_value(),
        sealer=state.sealer,
        **report.model_dump(),
    )
    try:
        with metrics.BROKER_CONFIRM_SECONDS.time():
            await state.producer.publish(
                topics.REPORTS, Envelope(event_id=report_id, key=event.person_key, message=event)
            )
    except BrokerUnavailable as exc:
        if redis_key:
            await state.redis.delete(redis_key)
        metrics.REPORTS_UNCONFIRMED.inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the broker could not confirm the report; nothing was accepted, retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from exc
    metrics.REPORTS_ACCEPTED.labels(report.source).inc()
    response.headers["Location"] = f"/v1/reports/{report_id}"
    return ReportAcceptedOut(report_id=report_id)
