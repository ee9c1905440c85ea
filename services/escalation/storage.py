"""Escalation's tables and the reads and writes on them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, Insert, Table, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col, delete, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX_TABLES
from gridline.db import dialect, due_rows, table_of, utc_timestamp
from gridline.staff.identity import Place, Staff
from services.escalation.domain import ENDED


class Task(SQLModel, table=True):
    """A follow-up task and where it stands."""

    __tablename__ = "task"

    task_id: str = Field(primary_key=True, max_length=64)
    report_id: str = Field(max_length=64, index=True)
    node_id: str = Field(max_length=64)
    grid_id: str = Field(max_length=64, index=True)  # the community for a triage task
    # Where the node sits above its grid: staff see and act on the tasks under their node
    # (`gridline.staff`), and lists are filtered on these columns. Empty for tasks stored
    # before they were recorded (only the county office sees those).
    community_id: str = Field(default="", max_length=64, index=True)
    township_id: str = Field(default="", max_length=64, index=True)
    triage: bool
    state: str = Field(max_length=20)
    level: int
    assignee_group_id: str = Field(max_length=64)
    assignee_level: int = 0  # where the task was assigned; `level` is how far it went up
    origin_risk: int = 0  # the risk its deadlines follow; a later report may raise it
    measure: str | None = Field(default=None, max_length=20)  # the measure started, if any
    # What assignment's policy asks for the person (e.g. home_quarantine_14d, 14天居家隔离).
    measure_id: str = Field(default="", max_length=64)
    measure_name: str = Field(default="", max_length=100)
    summary: str = Field(max_length=500)
    report_accepted_at: datetime = Field(sa_type=utc_timestamp())
    # Where the report came from (ReportSource: feed, self report, cadre's visit...); the daily
    # summary's cadre-found share counts it. 0 for tasks stored before it was carried.
    report_source: int = 0
    created_at: datetime = Field(sa_type=utc_timestamp())
    # Deadlines count from the latest (re)assignment; `step` is the next step of the plan.
    assigned_at: datetime = Field(sa_type=utc_timestamp())
    step: int = 0
    # The task's own plan once a raised risk re-planned it (`replanning.encode`); None: the
    # policy's plan of `origin_risk`.
    plan: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    version: int = 0  # changes so far; numbers the audit trail
    deadline_at: datetime | None = Field(
        default=None,
        sa_type=utc_timestamp(),
        index=True,
    )
    acknowledged_at: datetime | None = Field(default=None, sa_type=utc_timestamp())
    # When the task last went to another holder (reassigned, or sent back to triage); None
    # while its first holder has it. Task-page links issued before it are void.
    handed_over_at: datetime | None = Field(default=None, sa_type=utc_timestamp())
    # The code a resident under a measure sends back by SMS: random, unique while it is set,
    # cleared when the measure ends (`check_in_flows`).
    check_in_code: str | None = Field(default=None, max_length=8, unique=True, index=True)
    # The measure's plan from assignment's policy (`measures.FollowUp.encode`); None for tasks
    # stored before plans were carried.
    follow_up: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # The visit/verification deadline running since the acknowledgement, if any.
    verify_by: datetime | None = Field(default=None, sa_type=utc_timestamp())
    # The measure once started: when, and when it runs out (`measures.window`).
    measure_started_at: datetime | None = Field(default=None, sa_type=utc_timestamp())
    measure_ends_at: datetime | None = Field(default=None, sa_type=utc_timestamp())
    # What an ambiguous address could have meant (assignment's candidate nodes), for placing a
    # triage task by hand on the workbench; None when the parser had none.
    candidates: list[str] | None = Field(default=None, sa_type=JSON)


class Escalation(SQLModel, table=True):
    """An escalation raised for a task."""

    __tablename__ = "escalation"

    escalation_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(max_length=64, index=True)
    level: int
    reason: str = Field(max_length=200)
    group_id: str = Field(max_length=64)
    raised_at: datetime = Field(sa_type=utc_timestamp())


class TaskChange(SQLModel, table=True):
    """The audit trail: one row per change of a task, with who, when and through what."""

    __tablename__ = "task_change"

    change_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(max_length=64, index=True)
    version: int
    action: str = Field(max_length=20)
    from_state: str = Field(max_length=20)
    to_state: str = Field(max_length=20)
    actor: str = Field(max_length=100)
    channel: str = Field(max_length=20)  # http, grpc, page, sms, system
    note: str = Field(default="", max_length=500)
    changed_at: datetime = Field(sa_type=utc_timestamp())


class ZeroReport(SQLModel, table=True):
    """A grid's daily report (zero included); a later one the same day replaces it."""

    __tablename__ = "zero_report"

    report_id: str = Field(primary_key=True, max_length=64)  # derived from grid and day
    grid_id: str = Field(max_length=64, index=True)
    # Where the grid sits, for staff scope (as on tasks); empty for reports from before.
    community_id: str = Field(default="", max_length=64)
    township_id: str = Field(default="", max_length=64)
    day: str = Field(max_length=10, index=True)  # YYYY-MM-DD, Asia/Shanghai
    arrivals: int
    under_control: int
    abnormal: int
    # Typed by reports made before visits were recorded, kept as typed; empty since (the
    # summary computes the visit rate and the cadre-found share).
    households_visited: int | None = None
    found_by_cadres: int | None = None
    submitted_by: str = Field(max_length=100)
    channel: str = Field(max_length=20)
    submitted_at: datetime = Field(sa_type=utc_timestamp())


class ZeroReportRun(SQLModel, table=True):
    """The durable timer of one reporting day: what was done and when the next step falls due."""

    __tablename__ = "zero_report_run"

    day: str = Field(primary_key=True, max_length=10)
    stage: int = 0  # 0 before the due time, 1 community told, 2 township told and summaries sent
    next_at: datetime | None = Field(
        default=None,
        sa_type=utc_timestamp(),
        index=True,
    )


class CheckIn(SQLModel, table=True):
    """One check-in during a measure, from the phone link or an SMS reply."""

    __tablename__ = "check_in"

    check_in_id: str = Field(primary_key=True, max_length=64)  # derived from its source
    task_id: str = Field(max_length=64, index=True)
    temperature: float | None = None
    symptoms: str = Field(default="", max_length=200)
    abnormal: str = Field(default="", max_length=200)  # why people were told at once
    channel: str = Field(max_length=20)
    received_at: datetime = Field(sa_type=utc_timestamp())


class CheckInSlot(SQLModel, table=True):
    """A check-in that is due; its timer tells the cadre, then the liaison, when it is missed."""

    __tablename__ = "check_in_slot"

    slot_id: str = Field(primary_key=True, max_length=64)  # derived from task and due time
    task_id: str = Field(max_length=64, index=True)
    due_at: datetime = Field(sa_type=utc_timestamp())
    received: bool = False
    stage: int = 0  # 0 waiting, 1 cadre told, 2 liaison told
    next_at: datetime | None = Field(
        default=None,
        sa_type=utc_timestamp(),
        index=True,
    )


class CheckInCodeMiss(SQLModel, table=True):
    """An SMS check-in whose code matched no task: a sender's recent misses stop their guesses."""

    __tablename__ = "check_in_code_miss"

    id: int | None = Field(default=None, primary_key=True)
    # Derived from the sender's number (`gridline.ids.derived_id`): the number is not kept.
    sender_key: str = Field(max_length=64, index=True)
    missed_at: datetime = Field(sa_type=utc_timestamp())


class MeasureTimer(SQLModel, table=True):
    """One timer of a task's follow-up (`measures.TimerKind`), due once: a reminder, a test not
    done, the end notice, the verification deadline, a notice sent at once."""

    __tablename__ = "measure_timer"

    timer_id: str = Field(primary_key=True, max_length=64)  # derived from task, kind and time
    task_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=20)
    due_at: datetime = Field(sa_type=utc_timestamp())  # when the check-in, test or end is
    test_day: int = 0  # the day of the measure of a test's timers
    note: str = Field(default="", max_length=500)  # what the notice tells: destination, reason
    # When it fires; None once fired, answered or void.
    next_at: datetime | None = Field(default=None, sa_type=utc_timestamp(), index=True)
    fired_at: datetime | None = Field(default=None, sa_type=utc_timestamp())


class TestRecord(SQLModel, table=True):
    """A test result recorded during a measure."""

    __tablename__ = "test_result"

    result_id: str = Field(primary_key=True, max_length=64)  # derived from task and source id
    task_id: str = Field(max_length=64, index=True)
    test_day: int = 0  # the planned test it answers; 0: none was due
    result: str = Field(max_length=20)  # domain.TestResult
    actor: str = Field(max_length=100)
    channel: str = Field(max_length=20)
    recorded_at: datetime = Field(sa_type=utc_timestamp())


# This service's Alembic revisions (`gridline.db.Database` upgrades to the newest at start).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

TABLES: list[Table] = [
    PROCESSED_EVENT_TABLE,
    *OUTBOX_TABLES,
    table_of(Task),
    table_of(Escalation),
    table_of(TaskChange),
    table_of(ZeroReport),
    table_of(ZeroReportRun),
    table_of(CheckIn),
    table_of(CheckInSlot),
    table_of(CheckInCodeMiss),
    table_of(MeasureTimer),
    table_of(TestRecord),
]
TASK: Table = table_of(Task)
SelectT = TypeVar("SelectT", bound=SelectOfScalar[Any])

# INSERT ... ON CONFLICT (task_id) DO NOTHING, by dialect: both build the same SQL clause.
_INSERT_NEW_TASK: dict[str, Insert] = {
    "postgresql": postgresql.insert(TASK).on_conflict_do_nothing(index_elements=[TASK.c.task_id]),
    "sqlite": sqlite.insert(TASK).on_conflict_do_nothing(index_elements=[TASK.c.task_id]),
}


async def get_task(session: AsyncSession, task_id: str, *, for_update: bool = False) -> Task | None:
    """One task, locked for the transaction when asked."""
    query = select(Task).where(Task.task_id == task_id)
    if for_update:
        query = query.with_for_update()
    task = (await session.exec(query)).first()
    return task


_NEW_TASKS = "escalation.new_tasks"
_NEW_TIMERS = "escalation.new_timers"


def add_new_task(
    session: AsyncSession, values: dict[str, Any], timers: Sequence[dict[str, Any]] = ()
) -> None:
    """Gather a task, and timers of its own, to store with the transaction's other new tasks
    (`write_new_tasks`).

    Nothing is written yet: on SQLite the first write takes the database's one write lock until
    the commit, so a batch's writes come together at its end while other replicas' batches are
    computed beside it.
    """
    pending: dict[str, dict[str, Any]] = session.info.setdefault(_NEW_TASKS, {})
    if values["task_id"] in pending:
        return
    pending[values["task_id"]] = values
    session.info.setdefault(_NEW_TIMERS, []).extend(timers)


async def write_new_tasks(session: AsyncSession) -> list[bool]:
    """Store the gathered tasks in one statement, each unless its id is stored already, and
    their timers in another.

    No read first: a task id seen before (a replay, or twice in one batch) is left as it is,
    and so are its timers (their ids derive from the task's).
    Returns the `triage` flag of each task stored.
    """
    pending: dict[str, dict[str, Any]] = session.info.pop(_NEW_TASKS, {})
    timers: list[dict[str, Any]] = session.info.pop(_NEW_TIMERS, [])
    if not pending:
        return []
    statement = _INSERT_NEW_TASK[dialect(session)]
    result = await session.exec(statement.returning(TASK.c.triage), params=[*pending.values()])
    stored = [bool(row[0]) for row in result.all()]
    await add_timers(session, timers)
    return stored


async def tasks_by_id(session: AsyncSession, task_ids: Collection[str]) -> dict[str, Task]:
    """The stored tasks among the ids, by id."""
    if not task_ids:
        return {}
    query = select(Task).where(col(Task.task_id).in_(list(task_ids)))
    return {task.task_id: task for task in (await session.exec(query)).all()}


async def tasks_of_report(session: AsyncSession, report_id: str) -> Sequence[Task]:
    """The tasks a report became, oldest first."""
    query = select(Task).where(Task.report_id == report_id).order_by(col(Task.created_at))
    return (await session.exec(query)).all()


async def due_tasks(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[tuple[str, str, int]]:
    """Task id, node and next step of the earliest tasks whose deadline passed.

    Rows another replica holds locked are skipped (PostgreSQL), so replicas take different
    tasks; the caller commits at once, before asking anything over the network.
    """
    query = select(Task.task_id, Task.node_id, Task.step)
    return (await session.exec(due_rows(query, col(Task.deadline_at), now).limit(limit))).all()


async def lock_due_tasks(
    session: AsyncSession, task_ids: Collection[str], now: datetime
) -> Sequence[Task]:
    """Those of the tasks still due, locked for the transaction; rows another replica holds
    are skipped (PostgreSQL SKIP LOCKED; SQLite has one writer)."""
    query = select(Task).where(col(Task.task_id).in_(list(task_ids)))
    return (await session.exec(due_rows(query, col(Task.deadline_at), now))).all()


def place_of(row: Task | ZeroReport) -> Place:
    """Where a task's node, or a reported grid, sits: what staff scope is decided on."""
    return Place(township_id=row.township_id, community_id=row.community_id, grid_id=row.grid_id)


def _within(query: SelectT, model: type[SQLModel], staff: Staff) -> SelectT:
    """`query` narrowed to the rows under the staff member's node (all for the county)."""
    field = staff.place_field
    return query if field is None else query.where(getattr(model, field) == staff.node_id)


async def list_tasks(
    session: AsyncSession,
    *,
    state: str | None,
    limit: int,
    offset: int,
    within: Staff,
    measures_only: bool = False,
) -> Sequence[Task]:
    """Tasks under the staff member's node newest first, optionally of one state; with
    `measures_only`, only those whose person is under a measure."""
    query = _within(select(Task), Task, within)
    query = query.order_by(col(Task.created_at).desc()).limit(limit).offset(offset)
    if state:
        query = query.where(Task.state == state)
    if measures_only:
        query = query.where(col(Task.measure).is_not(None))
    return (await session.exec(query)).all()


async def escalations_of(session: AsyncSession, task_id: str) -> Sequence[Escalation]:
    """The escalations raised for a task, oldest first."""
    query = (
        select(Escalation)
        .where(Escalation.task_id == task_id)
        .order_by(col(Escalation.raised_at), col(Escalation.level))
    )
    return (await session.exec(query)).all()


async def changes_of(session: AsyncSession, task_id: str) -> Sequence[TaskChange]:
    """The audit trail of a task, oldest first."""
    query = (
        select(TaskChange).where(TaskChange.task_id == task_id).order_by(col(TaskChange.version))
    )
    return (await session.exec(query)).all()


async def zero_reports_of(
    session: AsyncSession, day: str, within: Staff | None = None
) -> Sequence[ZeroReport]:
    """The reports of one day: all of them, or those of the grids under a staff member's node."""
    query = select(ZeroReport).where(ZeroReport.day == day)
    if within is not None:
        query = _within(query, ZeroReport, within)
    return (await session.exec(query)).all()


async def due_runs(session: AsyncSession, now: datetime) -> Sequence[ZeroReportRun]:
    """Reporting days whose next step fell due, locked and skipped by other replicas."""
    query = select(ZeroReportRun).order_by(col(ZeroReportRun.day))
    return (await session.exec(due_rows(query, col(ZeroReportRun.next_at), now))).all()


async def summaries_due(session: AsyncSession, now: datetime) -> bool:
    """Whether some reporting day's summaries fell due (read without a lock)."""
    query = (
        select(ZeroReportRun.day)
        .where(
            col(ZeroReportRun.next_at).is_not(None),
            col(ZeroReportRun.next_at) <= now,
            col(ZeroReportRun.stage) >= 1,
        )
        .limit(1)
    )
    return (await session.exec(query)).first() is not None


async def open_task_ages(session: AsyncSession) -> Sequence[tuple[int, datetime, str]]:
    """The level, assignment time and grid of every task whose case has not ended."""
    query = select(Task.level, Task.assigned_at, Task.grid_id).where(
        col(Task.state).not_in(list(ENDED))
    )
    return (await session.exec(query)).all()


async def awaiting_acknowledgement(
    session: AsyncSession, states: Collection[str]
) -> Sequence[Task]:
    """The tasks in one of `states` (those nobody has taken yet)."""
    return (await session.exec(select(Task).where(col(Task.state).in_(list(states))))).all()


async def open_slots(session: AsyncSession, task_id: str) -> Sequence[CheckInSlot]:
    """A task's check-ins not received and not given up, earliest first, locked."""
    query = (
        select(CheckInSlot)
        .where(
            CheckInSlot.task_id == task_id,
            col(CheckInSlot.received).is_(False),
            col(CheckInSlot.stage) < 2,  # the liaison was told: given up
        )
        .order_by(col(CheckInSlot.due_at))
        .with_for_update()
    )
    return (await session.exec(query)).all()


async def due_slots(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[tuple[str, str, int]]:
    """Slot id, task id and stage of the earliest missed check-ins whose next step fell due.

    Rows another replica holds locked are skipped, as `due_tasks`; commit at once.
    """
    query = select(CheckInSlot.slot_id, CheckInSlot.task_id, CheckInSlot.stage)
    return (await session.exec(due_rows(query, col(CheckInSlot.next_at), now).limit(limit))).all()


async def lock_due_slots(
    session: AsyncSession, slot_ids: Collection[str], now: datetime
) -> Sequence[CheckInSlot]:
    """Those of the check-in slots still due, locked; rows another replica holds are skipped."""
    query = select(CheckInSlot).where(col(CheckInSlot.slot_id).in_(list(slot_ids)))
    return (await session.exec(due_rows(query, col(CheckInSlot.next_at), now))).all()


async def task_by_code(session: AsyncSession, code: str) -> Sequence[Task]:
    """The task under a measure whose check-in code this is (none, or one: codes are unique)."""
    query = select(Task).where(Task.check_in_code == code.upper())
    return (await session.exec(query)).all()


MEASURE_TIMER: Table = table_of(MeasureTimer)
_INSERT_TIMERS: dict[str, Insert] = {
    "postgresql": postgresql.insert(MEASURE_TIMER).on_conflict_do_nothing(
        index_elements=[MEASURE_TIMER.c.timer_id]
    ),
    "sqlite": sqlite.insert(MEASURE_TIMER).on_conflict_do_nothing(
        index_elements=[MEASURE_TIMER.c.timer_id]
    ),
}


async def add_timers(session: AsyncSession, timers: Sequence[dict[str, Any]]) -> None:
    """Store measure timers in one statement, each unless its id is stored already (a replay)."""
    if timers:
        await session.exec(_INSERT_TIMERS[dialect(session)], params=list(timers))


async def due_timers(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[tuple[str, str, str]]:
    """Timer id, task id and task node of the earliest measure timers that fell due.

    Rows another replica holds locked are skipped, as `due_tasks`; commit at once.
    """
    query = select(MeasureTimer.timer_id, MeasureTimer.task_id, Task.node_id).join(
        Task, col(Task.task_id) == col(MeasureTimer.task_id)
    )
    return (await session.exec(due_rows(query, col(MeasureTimer.next_at), now).limit(limit))).all()


async def lock_due_timers(
    session: AsyncSession, timer_ids: Collection[str], now: datetime
) -> Sequence[MeasureTimer]:
    """Those of the timers still due, locked; rows another replica holds are skipped."""
    query = select(MeasureTimer).where(col(MeasureTimer.timer_id).in_(list(timer_ids)))
    return (await session.exec(due_rows(query, col(MeasureTimer.next_at), now))).all()


async def pending_timers(session: AsyncSession, task_id: str) -> Sequence[MeasureTimer]:
    """A task's timers still to fire, earliest first, locked."""
    query = (
        select(MeasureTimer)
        .where(MeasureTimer.task_id == task_id, col(MeasureTimer.next_at).is_not(None))
        .order_by(col(MeasureTimer.due_at))
        .with_for_update()
    )
    return (await session.exec(query)).all()


async def timers_of(session: AsyncSession, task_id: str) -> Sequence[MeasureTimer]:
    """Every timer of a task, by due time."""
    query = (
        select(MeasureTimer)
        .where(MeasureTimer.task_id == task_id)
        .order_by(col(MeasureTimer.due_at), col(MeasureTimer.kind))
    )
    return (await session.exec(query)).all()


async def test_records_of(session: AsyncSession, task_id: str) -> Sequence[TestRecord]:
    """The test results of a task, oldest first."""
    query = (
        select(TestRecord)
        .where(TestRecord.task_id == task_id)
        .order_by(col(TestRecord.recorded_at))
    )
    return (await session.exec(query)).all()


async def code_misses(session: AsyncSession, sender_key: str, since: datetime) -> int:
    """How many SMS check-ins from the sender matched no task since `since`."""
    query = select(func.count()).where(
        CheckInCodeMiss.sender_key == sender_key, col(CheckInCodeMiss.missed_at) >= since
    )
    return (await session.exec(query)).one()


async def add_code_miss(
    session: AsyncSession, sender_key: str, moment: datetime, since: datetime
) -> None:
    """Count a miss of the sender at `moment`, and forget their misses from before `since`."""
    await session.exec(
        delete(CheckInCodeMiss).where(
            col(CheckInCodeMiss.sender_key) == sender_key, col(CheckInCodeMiss.missed_at) < since
        )
    )
    session.add(CheckInCodeMiss(sender_key=sender_key, missed_at=moment))


class HouseholdVisit(SQLModel, table=True):
    """One visit to a household (入户): who, when, what they found (`visits.Outcome`)."""

    __tablename__ = "household_visit"

    visit_id: str = Field(primary_key=True, max_length=64)  # derived from who and submission
    household_id: str = Field(max_length=64, index=True)
    # Where the household sits (the Directory's answer when the visit was recorded): staff
    # scope, a round's coverage and the summaries count on these.
    grid_id: str = Field(max_length=64, index=True)
    community_id: str = Field(max_length=64, index=True)
    township_id: str = Field(max_length=64, index=True)
    outcome: str = Field(max_length=20)
    note: str = Field(default="", max_length=500)
    visited_at: datetime = Field(sa_type=utc_timestamp(), index=True)
    visitor: str = Field(max_length=100)  # the audit name of the staff member who recorded it
    visitor_subject: str = Field(max_length=100)
    channel: str = Field(max_length=20)  # http, grpc
    recorded_at: datetime = Field(sa_type=utc_timestamp())


class VisitRound(SQLModel, table=True):
    """A visit round over a grid or community; its row is the durable timer of its deadline."""

    __tablename__ = "visit_round"

    round_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    node_id: str = Field(max_length=64)
    node_level: str = Field(max_length=20)  # visits.RoundLevel
    grid_id: str = Field(default="", max_length=64, index=True)
    community_id: str = Field(max_length=64, index=True)
    township_id: str = Field(max_length=64, index=True)
    starts_at: datetime = Field(sa_type=utc_timestamp())
    deadline_at: datetime = Field(sa_type=utc_timestamp())
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=utc_timestamp())
    # Set at the deadline: households of the node and those reached; whether it went up.
    households: int | None = None
    visited: int | None = None
    escalated: bool = False
    # The deadline until it is checked; then None. A check that could not be made moves it on.
    next_at: datetime | None = Field(default=None, sa_type=utc_timestamp(), index=True)


TABLES += [table_of(HouseholdVisit), table_of(VisitRound)]


async def visits_between(
    session: AsyncSession, start: datetime, end: datetime, within: Staff, limit: int
) -> Sequence[HouseholdVisit]:
    """The visits made in [start, end) under the staff member's node, newest first."""
    query = select(HouseholdVisit).where(
        col(HouseholdVisit.visited_at) >= start, col(HouseholdVisit.visited_at) < end
    )
    query = _within(query, HouseholdVisit, within)
    return (
        await session.exec(query.order_by(col(HouseholdVisit.visited_at).desc()).limit(limit))
    ).all()


async def households_reached(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    outcomes: Collection[str],
    field: str = "grid_id",
    node_id: str | None = None,
) -> dict[str, int]:
    """Distinct households with a visit of one of `outcomes` in [start, end), by `field`
    (`grid_id`, `community_id`), of one node or all."""
    group = getattr(HouseholdVisit, field)
    query = (
        select(group, func.count(func.distinct(HouseholdVisit.household_id)))
        .where(
            col(HouseholdVisit.visited_at) >= start,
            col(HouseholdVisit.visited_at) < end,
            col(HouseholdVisit.outcome).in_(list(outcomes)),
        )
        .group_by(group)
    )
    if node_id is not None:
        query = query.where(group == node_id)
    return {key: count for key, count in (await session.exec(query)).all()}


async def arrivals_by_source(
    session: AsyncSession, start: datetime, end: datetime, source: int
) -> dict[str, tuple[int, int]]:
    """By grid: the tasks whose report was accepted in [start, end), and those of them whose
    report came from `source`."""
    query = (
        select(
            Task.grid_id,
            func.count(),
            func.sum(case((col(Task.report_source) == source, 1), else_=0)),
        )
        .where(col(Task.report_accepted_at) >= start, col(Task.report_accepted_at) < end)
        .group_by(col(Task.grid_id))
    )
    return {
        grid: (count, int(of_source or 0))
        for grid, count, of_source in (await session.exec(query)).all()
    }


async def rounds_of(
    session: AsyncSession, within: Staff, *, open_only: bool, limit: int
) -> Sequence[VisitRound]:
    """The rounds under the staff member's node, the latest deadline first."""
    query = _within(select(VisitRound), VisitRound, within)
    if open_only:
        query = query.where(col(VisitRound.next_at).is_not(None))
    return (
        await session.exec(query.order_by(col(VisitRound.deadline_at).desc()).limit(limit))
    ).all()


async def due_rounds(session: AsyncSession, now: datetime, limit: int) -> Sequence[VisitRound]:
    """The rounds whose deadline check fell due, earliest first; read without a lock (the
    caller asks the Directory before `lock_due_rounds`)."""
    query = (
        select(VisitRound)
        .where(col(VisitRound.next_at).is_not(None), col(VisitRound.next_at) <= now)
        .order_by(col(VisitRound.next_at))
        .limit(limit)
    )
    return (await session.exec(query)).all()


async def lock_due_rounds(
    session: AsyncSession, round_ids: Collection[str], now: datetime
) -> Sequence[VisitRound]:
    """Those of the rounds still due, locked; rows another replica holds are skipped."""
    query = select(VisitRound).where(col(VisitRound.round_id).in_(list(round_ids)))
    return (await session.exec(due_rows(query, col(VisitRound.next_at), now))).all()
