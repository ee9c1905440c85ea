"""Turning validated records into confirmed events: idempotency claims, publishing, outcomes.

A record's idempotency keys (the Idempotency-Key header, and the pair (source, source record id))
are claimed in Redis as `pending:<id>` before publishing, set to the id once the broker
confirmed, and released when it did not, so a retry after an outage is a fresh attempt and a
repeat after success gets the original id without producing anything. The keys are the
integrator's own: another integrator using the same key or record id neither meets nor
pre-empts them (unsigned callers share one scope).

Reports of the same person (by person key) within the case window carry the first one's id as
`case_report_id`, so assignment enriches that case instead of opening another.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast

import redis.asyncio as aioredis
from opentelemetry.context import Context

from gridline import tracing
from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import events_pb2
from gridline.ids import new_id
from gridline.logging import get_logger
from gridline.personal import Sealer
from gridline.settings import Settings
from gridline.timestamps import now
from services.intake import metrics
from services.intake.domain import report_event
from services.intake.schemas import ReportBase
from services.intake.status import accepted_key, accepted_value
from services.intake.waves import Waves

log = get_logger(__name__)

Status = Literal["accepted", "duplicate", "cleared", "in_progress", "unavailable", "validated"]
_PENDING = "pending:"


@dataclass
class Submission:
    """One valid record to submit, and what became of it."""

    report: ReportBase
    idempotency_key: str | None = None
    # The integrator posting it, whose keys it claims; "" for an unsigned caller.
    integrator_id: str = ""
    status: Status = "accepted"
    report_id: str | None = None
    accepted_at: datetime | None = None
    keys: list[str] = field(default_factory=list)
    # The request's trace context, so a record produced in a shared wave stays in its trace.
    trace_context: Context | None = None


def record_key(integrator_id: str, source: str, source_record_id: str) -> str:
    """The Redis key remembering an integrator's (source, source record id) pair."""
    return f"intake:rec:{_scope(integrator_id)}:{source}:{source_record_id}"


def case_key(person_key: str) -> str:
    """The Redis key holding the first report of a person within the case window."""
    return f"intake:case:{person_key}"


def header_key(integrator_id: str, idempotency_key: str) -> str:
    """The Redis key remembering an integrator's Idempotency-Key."""
    return f"intake:idem:{_scope(integrator_id)}:{idempotency_key}"


def _scope(integrator_id: str) -> str:
    # Integrator ids are `int_` and hex: `-` (unsigned callers) is never one of them.
    return integrator_id or "-"


# Claims the records of a request (or a wave of requests) in one round trip. Per record: its
# claim keys and its case key in KEYS, its claim key count and report id in ARGV (after the TTL
# and the case window).
# A record none of whose keys is known claims them all as `pending:<id>` and marks its person's
# case window (SET NX GET: the case's first report id, if there is one); a record with a known
# key claims nothing and gets that key's value (an id, or `pending:<id>` of one being confirmed).
# Answers one line a record (ids and keys hold no newline): `+` and the case's first id (or
# nothing) if claimed, or `=` and the known value.
_CLAIM = """
local ttl, window = ARGV[1], ARGV[2]
local answers = {}
local k = 1
for i = 3, #ARGV, 2 do
  local count, report_id = tonumber(ARGV[i]), ARGV[i + 1]
  local known = false
  for j = k, k + count - 1 do
    known = redis.call('GET', KEYS[j])
    if known then break end
  end
  if known then
    answers[#answers + 1] = '=' .. known
  else
    for j = k, k + count - 1 do
      redis.call('SET', KEYS[j], 'pending:' .. report_id, 'EX', ttl)
    end
    local first = redis.call('SET', KEYS[k + count], report_id, 'NX', 'GET', 'EX', window)
    answers[#answers + 1] = '+' .. (first or '')
  end
  k = k + count + 1
end
return table.concat(answers, '\\n')
"""

# Settles the records of a request (or a wave) in one round trip: the first keys are set to the
# values in ARGV (after the TTL), one each, with the TTL; the keys after them are deleted.
_SETTLE = """
local ttl = ARGV[1]
local sets = #ARGV - 1
for i = 1, sets do
  redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ttl)
end
for i = sets + 1, #KEYS do
  redis.call('DEL', KEYS[i])
end
return sets
"""


class Submitter:
    """Publishes validated records once each, answering only with what the broker confirmed."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        redis: aioredis.Redis,
        sealer: Sealer,
    ) -> None:
        self._ttl = settings.idempotency_ttl_seconds
        self._case_window = settings.intake_case_window_seconds
        self._county = settings.intake_county_region_code
        self._secret = settings.person_key_secret.get_secret_value()
        self._producer = outbox.producer
        self._outbox = outbox
        self._redis = redis
        self._sealer = sealer
        self._claim_script = redis.register_script(_CLAIM)
        self._settle_script = redis.register_script(_SETTLE)
        self._singles = Waves(
            self._submit_together,
            settings.intake_wave_linger_ms / 1000,
            settings.intake_wave_reports,
        )

    async def submit(self, submissions: list[Submission]) -> None:
        """Claim, publish and settle every submission; each gets its status and report id.

        Single reports submitted in the same turn of the event loop go together as one wave:
        one claim and one settle round trip to Redis and one wait for the broker for all of
        them. A wave runs to its end even if a request waiting on it goes away. A batch is a
        wave of its own. Each record is produced in its own request's trace context.
        """
        context = tracing.capture_context()
        for sub in submissions:
            sub.trace_context = context
        if len(submissions) > 1:
            await self._submit_together([submissions])
        else:
            await self._singles(submissions)

    async def _submit_together(self, requests: list[list[Submission]]) -> list[None]:
        """Submit the records of several requests at once (a None for each request)."""
        submissions = [sub for subs in requests for sub in subs]
        request_of = {id(sub): n for n, subs in enumerate(requests) for sub in subs}
        for sub in submissions:
            if sub.report.risk(self._county) is None:
                sub.status = "cleared"
        candidates = [s for s in submissions if s.status == "accepted"]
        events = [self._event(s) for s in candidates]
        claimed, openers = await self._claim(candidates, events, request_of)
        started = time.perf_counter()
        envelopes = [
            Envelope(
                event_id=e.report_id, key=e.person_key, message=e, trace_context=sub.trace_context
            )
            for sub, e in claimed
        ]
        results = await self._producer.publish_many(topics.REPORTS, envelopes)
        if self._outbox.keeps_published:
            results = await self._keep(envelopes, results)
        confirm_seconds = time.perf_counter() - started
        remembered: dict[str, str] = {}
        released: list[str] = []
        for (sub, event), confirmed in zip(claimed, results, strict=True):
            if confirmed:
                metrics.BROKER_CONFIRM_SECONDS.observe(confirm_seconds)
                for key in sub.keys:
                    remembered[key] = event.report_id
                remembered[accepted_key(event.report_id)] = accepted_value(
                    sub.report.source, sub.accepted_at or now(), sub.integrator_id
                )
                if event.case_report_id:
                    metrics.CASES_JOINED.labels(sub.report.source).inc()
                continue
            sub.status = "unavailable"
            sub.report_id = None
            released += sub.keys
            if event.report_id in openers:
                released.append(case_key(event.person_key))
        if remembered or released:
            await self._settle_script(
                keys=[*remembered, *released], args=[self._ttl, *remembered.values()]
            )
        _count(submissions)
        return [None] * len(requests)

    async def validate(self, submissions: list[Submission]) -> None:
        """Answer each submission as `submit` would, claiming, publishing and keeping nothing.

        A record `submit` would accept is `validated` and has no report id. Keys are only read
        (one MGET), so a key already known answers `duplicate` with its original id, or
        `in_progress`, exactly as `submit` would; a record repeating a key of an earlier
        record of the same request is `duplicate` without an id (the earlier one has none).
        Nothing is remembered, so a real post of the same records afterwards is accepted.
        """
        for sub in submissions:
            if sub.report.risk(self._county) is None:
                sub.status = "cleared"
        candidates = [s for s in submissions if s.status == "accepted"]
        for sub in candidates:
            sub.keys = self._keys(sub)
        keys = [key for sub in candidates for key in sub.keys]
        # The client decodes answers (decode_responses): a str, or None for a key not set.
        known = iter(cast(list[str | None], await self._redis.mget(keys)) if keys else [])
        # Keys of earlier records of this request that `submit` would have claimed.
        claimed: set[str] = set()
        for sub in candidates:
            # Like the claim script: the first of the record's keys that is known decides.
            value = next((v for v in [next(known) for _ in sub.keys] if v is not None), None)
            if value is not None and value.startswith(_PENDING):
                sub.status, sub.report_id = "in_progress", None
            elif value is not None:
                sub.status, sub.report_id = "duplicate", value
            elif claimed.intersection(sub.keys):
                sub.status, sub.report_id = "duplicate", None
            else:
                sub.status, sub.report_id = "validated", None
                claimed.update(sub.keys)
        _count(submissions)

    async def _keep(self, envelopes: list[Envelope], confirmed: list[bool]) -> list[bool]:
        """Hold the confirmed records on disk too, for a broker that forgets on restart.

        A record not kept is answered as not taken (503): a 202 promises it survives a restart.
        """
        kept = [e for e, ok in zip(envelopes, confirmed, strict=True) if ok]
        try:
            await self._outbox.remember_published(topics.REPORTS, kept)
        except Exception:
            log.exception("could not keep accepted reports on disk")
            return [False] * len(confirmed)
        return confirmed

    @staticmethod
    def _keys(sub: Submission) -> list[str]:
        """The idempotency keys a submission claims: its header's, then its record id's."""
        keys = []
        if sub.idempotency_key:
            keys.append(header_key(sub.integrator_id, sub.idempotency_key))
        if sub.report.source_record_id:
            keys.append(
                record_key(sub.integrator_id, sub.report.source, sub.report.source_record_id)
            )
        return keys

    def _event(self, sub: Submission) -> events_pb2.ReportAccepted:
        sub.report_id = new_id()
        sub.accepted_at = now()
        sub.keys = self._keys(sub)
        return report_event(
            report_id=sub.report_id,
            accepted_at=sub.accepted_at,
            person_key_secret=self._secret,
            sealer=self._sealer,
            **sub.report.event_fields(self._county),
        )

    async def _claim(
        self,
        submissions: list[Submission],
        events: list[events_pb2.ReportAccepted],
        request_of: dict[int, int],
    ) -> tuple[list[tuple[Submission, events_pb2.ReportAccepted]], set[str]]:
        """Claim each submission's keys and join its person's case, in one round trip.

        Those already known are settled as repeats (`request_of` tells which submissions came
        in one request). Returns the claimed submissions with their events, and the ids of the
        reports that open a case (released if not confirmed).
        """
        if not submissions:
            return [], set()
        keys: list[str] = []
        args: list[str | int] = [self._ttl, self._case_window]
        for sub, event in zip(submissions, events, strict=True):
            keys += [*sub.keys, case_key(event.person_key)]
            args += [len(sub.keys), event.report_id]
        answers = (await self._claim_script(keys=keys, args=args)).split("\n")
        request_of_id = {s.report_id: request_of[id(s)] for s in submissions}
        claimed, openers = [], set()
        for sub, event, answer in zip(submissions, events, answers, strict=True):
            outcome, value = answer[0], answer[1:]
            if outcome == "+":
                claimed.append((sub, event))
                if value:
                    event.case_report_id = value
                else:
                    openers.add(event.report_id)
                continue
            original_id = value.removeprefix(_PENDING)
            # Still pending elsewhere: its outcome is not known yet. Pending in this very
            # request (a batch): a duplicate of the record claimed before it.
            same_request = request_of_id.get(original_id) == request_of[id(sub)]
            if value.startswith(_PENDING) and not same_request:
                sub.status, sub.report_id = "in_progress", None
            else:
                sub.status, sub.report_id = "duplicate", original_id or None
        return claimed, openers


def _count(submissions: list[Submission]) -> None:
    """Count each record once, under the status it is answered with."""
    for (source, status), count in Counter(
        (sub.report.source, sub.status) for sub in submissions
    ).items():
        metrics.REPORTS.labels(source, status).inc(count)
