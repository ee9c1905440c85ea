"""Turning validated records into confirmed events: idempotency claims, publishing, outcomes.

A record's idempotency keys (the Idempotency-Key header, and the pair (source, source record id))
are claimed in Redis as `pending:<id>` before publishing, set to the id once the broker
confirmed, and released when it did not, so a retry after an outage is a fresh attempt and a
repeat after success gets the original id without producing anything.

Reports of the same person (by person key) within the case window carry the first one's id as
`case_report_id`, so assignment enriches that case instead of opening another.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import redis.asyncio as aioredis

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import BrokerUnavailable, EventProducer
from gridline.contracts.v1 import events_pb2
from gridline.ids import new_id
from gridline.personal import Sealer
from gridline.settings import Settings
from gridline.timestamps import now
from services.intake import metrics
from services.intake.domain import report_event
from services.intake.schemas import ReportBase
from services.intake.status import accepted_key, accepted_value

Status = Literal["accepted", "duplicate", "cleared", "in_progress", "unavailable"]
_PENDING = "pending:"
MAX_IN_FLIGHT = 64


@dataclass
class Submission:
    """One valid record to submit, and what became of it."""

    report: ReportBase
    idempotency_key: str | None = None
    status: Status = "accepted"
    report_id: str | None = None
    accepted_at: datetime | None = None
    keys: list[str] = field(default_factory=list)


def record_key(source: str, source_record_id: str) -> str:
    """The Redis key remembering a (source, source record id) pair."""
    return f"intake:rec:{source}:{source_record_id}"


def case_key(person_key: str) -> str:
    """The Redis key holding the first report of a person within the case window."""
    return f"intake:case:{person_key}"


def header_key(idempotency_key: str) -> str:
    """The Redis key remembering an Idempotency-Key."""
    return f"intake:idem:{idempotency_key}"


class Submitter:
    """Publishes validated records once each, answering only with what the broker confirmed."""

    def __init__(
        self,
        settings: Settings,
        producer: EventProducer,
        redis: aioredis.Redis,
        sealer: Sealer,
    ) -> None:
        self._ttl = settings.idempotency_ttl_seconds
        self._case_window = settings.intake_case_window_seconds
        self._secret = settings.person_key_secret.get_secret_value()
        self._producer = producer
        self._redis = redis
        self._sealer = sealer
        # aiokafka's accumulator wakes every waiting send when a full batch drains, and they
        # race for the next; with a whole batch of records waiting that spin dominates.
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def submit(self, submissions: list[Submission]) -> None:
        """Claim, publish and settle every submission; each gets its status and report id."""
        for sub in submissions:
            metrics.REPORTS_RECEIVED.labels(sub.report.source).inc()
            if sub.report.risk() is None:
                sub.status = "cleared"
                metrics.SCANS_CLEARED.inc()
        claimed = await self._claim([s for s in submissions if s.status == "accepted"])
        events = [self._event(s) for s in claimed]
        openers = await self._join_cases(events)
        results = await asyncio.gather(
            *(self._publish_limited(s, e) for s, e in zip(claimed, events, strict=True))
        )
        confirmed = [s for s, ok in zip(claimed, results, strict=True) if ok]
        failed = [s for s, ok in zip(claimed, results, strict=True) if not ok]
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub in confirmed:
                for key in sub.keys:
                    pipe.set(key, sub.report_id or "", ex=self._ttl)
                pipe.set(
                    accepted_key(sub.report_id or ""),
                    accepted_value(sub.report.source, sub.accepted_at or now()),
                    ex=self._ttl,
                )
            unconfirmed = {id(s) for s in failed}
            for sub, event in zip(claimed, events, strict=True):
                if id(sub) in unconfirmed:
                    sub.status = "unavailable"
                    sub.report_id = None
                    if sub.keys:
                        pipe.delete(*sub.keys)
                    if event.report_id in openers:
                        pipe.delete(case_key(event.person_key))
                elif event.case_report_id:
                    metrics.CASES_JOINED.labels(sub.report.source).inc()
            await pipe.execute()

    def _event(self, sub: Submission) -> events_pb2.ReportAccepted:
        sub.accepted_at = now()
        return report_event(
            report_id=sub.report_id or "",
            accepted_at=sub.accepted_at,
            person_key_secret=self._secret,
            sealer=self._sealer,
            **sub.report.event_fields(),
        )

    async def _join_cases(self, events: list[events_pb2.ReportAccepted]) -> set[str]:
        """Point each report at the first report of its person within the window.

        Returns the ids of the reports that open a case (released again if not confirmed).
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                key = case_key(event.person_key)
                pipe.set(key, event.report_id, nx=True, ex=self._case_window, get=True)
            firsts = await pipe.execute()
        openers = set()
        for event, first in zip(events, firsts, strict=True):
            if first:
                event.case_report_id = first
            else:
                openers.add(event.report_id)
        return openers

    async def _claim(self, submissions: list[Submission]) -> list[Submission]:
        """Claim each submission's keys; those already known are settled as repeats."""
        for sub in submissions:
            sub.report_id = new_id()
            if sub.idempotency_key:
                sub.keys.append(header_key(sub.idempotency_key))
            if sub.report.source_record_id:
                sub.keys.append(record_key(sub.report.source, sub.report.source_record_id))
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub in submissions:
                for key in sub.keys:
                    pipe.set(key, _PENDING + (sub.report_id or ""), nx=True, ex=self._ttl)
            outcomes = iter(await pipe.execute())
        won = {id(s): [next(outcomes) for _ in s.keys] for s in submissions}
        lost = [s for s in submissions if not all(won[id(s)])]
        if lost:
            batch_ids = {s.report_id for s in submissions if all(won[id(s)])}
            await self._settle_repeats(lost, won, batch_ids)
        return [s for s in submissions if all(won[id(s)])]

    async def _settle_repeats(
        self, lost: list[Submission], won: dict[int, list[bool]], batch_ids: set[str | None]
    ) -> None:
        """Release what repeats did claim and answer them with the original's id."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub in lost:
                taken = [k for k, ok in zip(sub.keys, won[id(sub)], strict=True) if ok]
                if taken:
                    pipe.delete(*taken)
            await pipe.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub in lost:
                pipe.get(next(k for k, ok in zip(sub.keys, won[id(sub)], strict=True) if not ok))
            originals = await pipe.execute()
        for sub, original in zip(lost, originals, strict=True):
            original = original or ""
            original_id = original.removeprefix(_PENDING)
            # Still pending elsewhere: its outcome is not known yet. Pending in this very batch:
            # a duplicate of the record claimed before it.
            if original.startswith(_PENDING) and original_id not in batch_ids:
                sub.status, sub.report_id = "in_progress", None
            else:
                sub.status, sub.report_id = "duplicate", original_id or None
                metrics.REPORTS_DUPLICATE.labels(sub.report.source).inc()

    async def _publish_limited(self, sub: Submission, event: events_pb2.ReportAccepted) -> bool:
        async with self._in_flight:
            return await self._publish(sub, event)

    async def _publish(self, sub: Submission, event: events_pb2.ReportAccepted) -> bool:
        started = time.perf_counter()
        try:
            await self._producer.publish(
                topics.REPORTS,
                Envelope(event_id=event.report_id, key=event.person_key, message=event),
            )
        except BrokerUnavailable:
            metrics.REPORTS_UNCONFIRMED.inc()
            return False
        metrics.BROKER_CONFIRM_SECONDS.observe(time.perf_counter() - started)
        metrics.REPORTS_ACCEPTED.labels(sub.report.source).inc()
        return True
