"""A measure carried out: its plan, its days, and the timers that run it. No Kafka, no HTTP.

Assignment's policy decides the plan of each task (`FollowUpPlan` on the ASSIGNED event: the
measure's days, its test days, the check-in times, the verification deadline and the measure's
end); the task keeps it, and it is the one source of check-in and test times. A measure counts
from the person's arrival (its day 1 is the arrival day), so it ends at the plan's
`measure_ends_at` however late the cadre starts it.

The timers are rows of `storage.MeasureTimer`, each due once: reminders before each check-in
and test, a test not done, the day before the end, the verification deadline, and the notices
sent at once (a high-risk arrival, a positive test, a person who left again, an early end to
approve). The deadline watcher fires them (`measure_flows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from gridline.contracts.v1 import events_pb2
from gridline.timestamps import SHANGHAI, from_timestamp
from services.escalation.domain import Measure

# A measure started on a task whose plan has none (report only, or a task stored before plans
# were carried): as long as the usual measure of its kind, checked in twice a day.
DEFAULT_DAYS = {Measure.QUARANTINE: 14, Measure.MONITORING: 7}
DEFAULT_CHECK_IN_TIMES = (time(8), time(20))


class TimerKind(StrEnum):
    """What a measure timer does when it falls due."""

    HIGH_RISK = "high_risk"  # tell the township and county offices of a high-risk arrival
    VERIFY = "verify"  # the visit/verification deadline
    CHECK_IN_REMINDER = "check_in_reminder"
    TEST_REMINDER = "test_reminder"
    TEST_MISSED = "test_missed"  # no result of the day's test (or "not taken")
    END_NOTICE = "end_notice"  # the measure ends tomorrow
    POSITIVE = "positive"  # a positive test: health centre and county office at once
    LEFT = "left"  # left again: handed on to the county office
    EARLY_END = "early_end"  # an early end to approve: the township office

    @property
    def during_measure(self) -> bool:
        """Whether it is void once the measure is over (the case ended or moved on)."""
        return self in _DURING_MEASURE


_DURING_MEASURE = frozenset(
    {
        TimerKind.CHECK_IN_REMINDER,
        TimerKind.TEST_REMINDER,
        TimerKind.TEST_MISSED,
        TimerKind.END_NOTICE,
    }
)


@dataclass(frozen=True)
class FollowUp:
    """A task's follow-up plan, as assignment's policy set it."""

    plan_id: str = ""
    measure_days: int = 0  # 0: report only
    test_days: tuple[int, ...] = ()  # days of the measure with a test, 1-based
    check_in_times: tuple[time, ...] = ()  # Beijing time, each day of the measure
    verify_within_hours: int = 0
    home_visit: bool = False
    verify_by: datetime | None = None
    measure_ends_at: datetime | None = None

    @classmethod
    def from_event(cls, plan: events_pb2.FollowUpPlan) -> FollowUp:
        """The plan a TaskEvent carries; ValueError for a check-in time that is not HH:MM."""
        return cls(
            plan_id=plan.plan_id,
            measure_days=plan.measure_days,
            test_days=tuple(sorted(set(plan.test_days))),
            check_in_times=tuple(sorted({time.fromisoformat(t) for t in plan.check_in_times})),
            verify_within_hours=plan.verify_within_hours,
            home_visit=plan.home_visit,
            verify_by=from_timestamp(plan.verify_by) if plan.HasField("verify_by") else None,
            measure_ends_at=(
                from_timestamp(plan.measure_ends_at) if plan.HasField("measure_ends_at") else None
            ),
        )

    def encode(self) -> dict[str, Any]:
        """The plan as `Task.follow_up` stores it (JSON)."""
        return {
            "plan_id": self.plan_id,
            "measure_days": self.measure_days,
            "test_days": list(self.test_days),
            "check_in_times": [t.strftime("%H:%M") for t in self.check_in_times],
            "verify_within_hours": self.verify_within_hours,
            "home_visit": self.home_visit,
            "verify_by": self.verify_by.isoformat() if self.verify_by else None,
            "measure_ends_at": self.measure_ends_at.isoformat() if self.measure_ends_at else None,
        }

    @classmethod
    def decode(cls, raw: dict[str, Any] | None) -> FollowUp | None:
        """The stored plan, or None for a task that has none."""
        if raw is None:
            return None
        verify_by, ends_at = raw.get("verify_by"), raw.get("measure_ends_at")
        return cls(
            plan_id=raw.get("plan_id", ""),
            measure_days=int(raw.get("measure_days", 0)),
            test_days=tuple(int(d) for d in raw.get("test_days", [])),
            check_in_times=tuple(time.fromisoformat(t) for t in raw.get("check_in_times", [])),
            verify_within_hours=int(raw.get("verify_within_hours", 0)),
            home_visit=bool(raw.get("home_visit", False)),
            verify_by=datetime.fromisoformat(verify_by) if verify_by else None,
            measure_ends_at=datetime.fromisoformat(ends_at) if ends_at else None,
        )


@dataclass(frozen=True)
class Window:
    """When a measure runs: from its start to its end; `first_day` is its day 1."""

    start: datetime
    ends_at: datetime
    first_day: date
    days: int
    check_in_times: tuple[time, ...]
    test_days: tuple[int, ...]

    def day_of(self, moment: datetime) -> int:
        """The day of the measure a moment falls on (1 on `first_day`)."""
        return (moment.astimezone(SHANGHAI).date() - self.first_day).days + 1


def window(plan: FollowUp | None, measure: Measure, start: datetime) -> Window:
    """The measure of `plan` started at `start`: until the plan's end, counted from arrival.

    A plan without a measure (report only) or without a plan takes the usual days of the kind
    the cadre started, from the start.
    """
    if plan is not None and plan.measure_days > 0 and plan.measure_ends_at is not None:
        days, ends_at = plan.measure_days, plan.measure_ends_at
    else:
        days = DEFAULT_DAYS[measure]
        ends_at = start + timedelta(days=days)
    first_day = (ends_at - timedelta(days=days)).astimezone(SHANGHAI).date()
    times = plan.check_in_times if plan is not None and plan.check_in_times else ()
    return Window(
        start=start,
        ends_at=max(ends_at, start),
        first_day=first_day,
        days=days,
        check_in_times=times or DEFAULT_CHECK_IN_TIMES,
        test_days=plan.test_days if plan is not None and plan.measure_days > 0 else (),
    )


def _at(day: date, at: time) -> datetime:
    return datetime.combine(day, at, SHANGHAI)


def check_in_times(measure: Window) -> list[datetime]:
    """Every check-in of the measure: each day's times after its start, up to its end."""
    last = measure.ends_at.astimezone(SHANGHAI).date()
    day = measure.start.astimezone(SHANGHAI).date()
    found = []
    while day <= last:
        found += [_at(day, t) for t in measure.check_in_times]
        day += timedelta(days=1)
    return [m for m in found if measure.start < m <= measure.ends_at]


def due_tests(measure: Window, test_at: time) -> list[tuple[int, datetime]]:
    """Each test day of the measure and when its test is due; a day already past when the
    measure starts is due at the start (the test is owed all the same)."""
    found = []
    for day in measure.test_days:
        due = max(_at(measure.first_day + timedelta(days=day - 1), test_at), measure.start)
        if due <= measure.ends_at:
            found.append((day, due))
    return found


@dataclass(frozen=True)
class Timer:
    """One timer of a measure: what, when the thing is due, when it fires, which test."""

    kind: TimerKind
    due_at: datetime
    fire_at: datetime
    test_day: int = 0


@dataclass(frozen=True)
class Timing:
    """How far ahead reminders go, how long a test may be late, when the end is announced."""

    reminder: timedelta
    test_at: time
    test_grace: timedelta
    end_notice: timedelta


def measure_timers(measure: Window, timing: Timing) -> list[Timer]:
    """The timers of a measure that starts: a reminder before each check-in and each test, a
    test not done after its grace, and the notice before the end (when the measure is longer
    than that)."""
    start = measure.start
    timers = [
        Timer(TimerKind.CHECK_IN_REMINDER, due, max(due - timing.reminder, start))
        for due in check_in_times(measure)
    ]
    for day, due in due_tests(measure, timing.test_at):
        timers.append(Timer(TimerKind.TEST_REMINDER, due, max(due - timing.reminder, start), day))
        timers.append(Timer(TimerKind.TEST_MISSED, due, due + timing.test_grace, day))
    end_notice = measure.ends_at - timing.end_notice
    if end_notice > start:
        timers.append(Timer(TimerKind.END_NOTICE, measure.ends_at, end_notice))
    return timers


def verify_due(
    plan: FollowUp | None, acknowledged_at: datetime, handed_over: bool
) -> datetime | None:
    """When the visit/verification of an acknowledged task falls due: the plan's deadline,
    counted afresh from the acknowledgement when the task came from another holder; None
    without a plan."""
    if plan is None or plan.verify_within_hours <= 0:
        return None
    if plan.verify_by is not None and not handed_over:
        return plan.verify_by
    return acknowledged_at + timedelta(hours=plan.verify_within_hours)
