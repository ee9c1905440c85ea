"""The daily zero-report's flows: storing reports and the day's durable steps.

A day's run row is the timer: at the due time the communities hear of missing grids, an hour
later the township offices do, and every office group gets its one summary. The row is locked
and skipped by other replicas, and every event id derives from day, step and recipient. The
summaries take the grids' household counts fresh from the Directory; without them they still go
out, the visit rate left unknown. The visit rate's visits and the cadre-found share's reports are
read from the records when the summaries go out (`records_of_days`), never typed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.envelope import Envelope, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.notices import build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.ids import derived_id
from gridline.logging import get_logger
from gridline.staff.identity import Place
from gridline.timestamps import now, to_timestamp
from gridline.workers import PeriodicWorker
from services.escalation import metrics, storage
from services.escalation.visits import REACHED
from services.escalation.zero_reports import (
    Counts,
    Records,
    RosterGrid,
    Schedule,
    missing_by_office,
    missing_text,
    roll_up,
    summary_text,
)

log = get_logger(__name__)

# Every grid's household count, or None when it cannot be had now.
HouseholdSource = Callable[[], Awaitable[Mapping[str, int] | None]]


class Roster(Protocol):
    """Where the grids that must report come from (assignment's Directory at runtime)."""

    async def grids(self) -> list[RosterGrid]:
        """The grids with their offices."""

    async def households(self) -> Mapping[str, int] | None:
        """Every grid's household count now, or None when it cannot be had."""


MISSING_REASON = "网格未按时报送每日零报告"


async def submit(
    db: Database,
    schedule: Schedule,
    grid_id: str,
    day: date,
    counts: Counts,
    *,
    actor: str,
    channel: str,
    moment: datetime,
    place: Place | None = None,
) -> storage.ZeroReport:
    """Store a grid's report for a day; a second one the same day replaces the first.

    `place` is where the grid sits, by which staff scope lists the reports (unknown: only the
    county office sees the report).
    """
    report_id = derived_id("zero-report", grid_id, day.isoformat())
    async with db.session() as session:
        report = await session.get(storage.ZeroReport, report_id, with_for_update=True)
        if report is None:
            report = storage.ZeroReport(report_id=report_id, grid_id=grid_id, day=day.isoformat(),
                                        submitted_by=actor, channel=channel, submitted_at=moment,
                                        **vars(counts))  # fmt: skip
        else:
            for name, value in vars(counts).items():
                setattr(report, name, value)
            report.submitted_by, report.channel, report.submitted_at = actor, channel, moment
        if place is not None:
            report.community_id, report.township_id = place.community_id, place.township_id
        session.add(report)
    on_time = moment <= schedule.due_at(day)
    metrics.ZERO_REPORTS.labels("on_time" if on_time else "late").inc()
    return report


async def open_day(db: Database, schedule: Schedule, day: date) -> None:
    """Create the day's timer unless it exists (another replica may create it first)."""
    async with db.session() as session:
        if await session.get(storage.ZeroReportRun, day.isoformat()) is not None:
            return
    with contextlib.suppress(IntegrityError):
        async with db.session() as session:
            session.add(storage.ZeroReportRun(day=day.isoformat(), next_at=schedule.due_at(day)))


async def advance(
    db: Database,
    roster: list[RosterGrid],
    schedule: Schedule,
    moment: datetime,
    households: HouseholdSource | None = None,
) -> list[str]:
    """Take every reporting day whose next step fell due one step on; the notification ids sent.

    `households`, when given, replaces the roster's household counts for the summaries; it is
    asked before the days are locked, since the Directory may take seconds to answer.
    """
    await open_day(db, schedule, schedule.day_of(moment))
    # The roster the summaries count; None when they were not due at the look.
    counted: list[RosterGrid] | None = roster
    if households is not None:
        async with db.session() as session:
            due = await storage.summaries_due(session, moment)
        counted = _counted(roster, await households()) if due else None
    sent: list[str] = []
    async with db.session() as session:
        for run in await storage.due_runs(session, moment):
            day = date.fromisoformat(run.day)
            reports = {
                r.grid_id: Counts(r.arrivals, r.under_control, r.abnormal)
                for r in await storage.zero_reports_of(session, run.day)
            }
            if run.stage == 0:
                sent += _tell_missing(session, roster, set(reports), day, moment, False)
                missing = sum(1 for grid in roster if grid.grid_id not in reports)
                metrics.ZERO_REPORTS.labels("missing").inc(missing)
                run.stage, run.next_at = 1, schedule.township_at(day)
            elif counted is None:
                continue  # its summaries fell due since the look: the next pass asks first
            else:
                sent += _tell_missing(session, roster, set(reports), day, moment, True)
                records = await records_of_days(session, schedule, day, day)
                sent += _send_summaries(session, counted, reports, records, day, moment)
                run.stage, run.next_at = 2, None
            session.add(run)
    return sent


def _tell_missing(
    session: AsyncSession,
    roster: list[RosterGrid],
    reported: set[str],
    day: date,
    moment: datetime,
    township: bool,
) -> list[str]:
    level = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE if township else common_pb2.CHAIN_LEVEL_COMMUNITY
    sent = []
    for office, grids in missing_by_office(roster, reported, level).values():
        for grid in grids:
            raised = events_pb2.EscalationRaised(
                escalation_id=derived_id("zero-report-missing", day.isoformat(), grid.grid_id,
                                         str(level)),
                level=level, reason=MISSING_REASON, grid_id=grid.grid_id, recipient=office,
                raised_at=to_timestamp(moment),
            )  # fmt: skip
            stage(
                session,
                topics.ESCALATIONS,
                Envelope(event_id=raised.escalation_id, key=grid.grid_id, message=raised),
            )
            metrics.ESCALATIONS.labels(
                metrics.level_label(level),
                "zero_report_missing",
                metrics.township_label(grid.offices.values()),
            ).inc()
        title, body = missing_text(grids, day, township)
        sent.append(_notify(session, office, "missing", day, moment, title, body,
                            events_pb2.NOTIFICATION_KIND_ESCALATION))  # fmt: skip
    return sent


def _counted(roster: list[RosterGrid], households: Mapping[str, int] | None) -> list[RosterGrid]:
    """The roster with the Directory's household counts (unknown where it gave none)."""
    found = households or {}
    return [dataclasses.replace(grid, households=found.get(grid.grid_id)) for grid in roster]


async def records_of_days(
    session: AsyncSession, schedule: Schedule, first: date, last: date
) -> dict[str, Records]:
    """Each grid's records of the reporting days `first` to `last`: households reached by a
    visit (each once over the span), reports accepted (one task each) and those of them from a
    cadre's visit."""
    start, _ = schedule.bounds(first)
    _, end = schedule.bounds(last)
    reached = await storage.households_reached(session, start, end, REACHED)
    arrivals = await storage.arrivals_by_source(
        session, start, end, common_pb2.REPORT_SOURCE_CADRE_VISIT
    )
    return {
        grid_id: Records(reached.get(grid_id, 0), *arrivals.get(grid_id, (0, 0)))
        for grid_id in reached.keys() | arrivals.keys()
    }


def _send_summaries(
    session: AsyncSession,
    roster: list[RosterGrid],
    reports: dict[str, Counts],
    records: dict[str, Records],
    day: date,
    moment: datetime,
) -> list[str]:
    sent = []
    for summary in roll_up(roster, reports, records):
        title, body = summary_text(summary, day)
        sent.append(_notify(session, summary.office, "summary", day, moment, title, body,
                            events_pb2.NOTIFICATION_KIND_DAILY_SUMMARY))  # fmt: skip
    return sent


def _notify(
    session: AsyncSession,
    office: common_pb2.Responsible,
    what: str,
    day: date,
    moment: datetime,
    title: str,
    body: str,
    kind: events_pb2.NotificationKind,
) -> str:
    key = derived_id("zero-report", what, day.isoformat(), str(office.level), office.group_id)
    # A roll-up may wait for an office's morning; missing reports are a signal and may not.
    roll_up = kind == events_pb2.NOTIFICATION_KIND_DAILY_SUMMARY
    notice = build_notice(key, kind, office, title=title, body=body, at=moment, deferrable=roll_up)
    stage(session, topics.NOTIFICATIONS, notice_envelope(notice))
    return notice.notification_id


class ZeroReportWatcher(PeriodicWorker):
    """Advances the reporting days every `tick` seconds while its context is open."""

    def __init__(
        self,
        db: Database,
        roster: Roster,
        schedule: Schedule,
        tick: float,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._db, self._roster = db, roster
        self._schedule, self._clock = schedule, clock
        super().__init__(tick)

    name = "zero-reports"

    async def run_pass(self) -> None:
        """Advance the reporting days as far as the clock allows."""
        grids = await self._roster.grids()
        # A step done may leave the next one due already (after a long stop).
        while not self.stopping and await advance(
            self._db, grids, self._schedule, self._clock(), self._roster.households
        ):
            pass
