"""Personal data past its retention is purged from every service's tables, outbox and ledger
included, and nothing else is: on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import text

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX
from gridline.bus.retention import PersonalData, PersonalDataRetention, personal_data_cutoff
from gridline.db import Database, table_of
from gridline.settings import Settings
from services.assignment import sealed
from services.assignment import storage as assignment_storage
from services.assignment.retention import PERSONAL_DATA as ASSIGNMENT
from services.escalation import storage as escalation_storage
from services.escalation.retention import PERSONAL_DATA as ESCALATION
from services.intake import storage as intake_storage
from services.intake.retention import PERSONAL_DATA as INTAKE
from services.notify import storage as notify_storage
from services.notify.retention import PERSONAL_DATA as NOTIFY
from tests.helpers import database_settings
from tests.personal_data.support import (
    LONG_AGO,
    NOW,
    OLD,
    RECENT,
    add_bus_rows,
    column,
    sealed_report,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on SQLite files, or on the test PostgreSQL server (skipped without it)."""
    return database_settings(request, Settings(data_dir=tmp_path, personal_data_retention_days=30))


@asynccontextmanager
async def service_db(
    settings: Settings, storage: ModuleType, service: str
) -> AsyncIterator[Database]:
    """A service's database at its newest revision, empty (its PostgreSQL schema made anew)."""
    if settings.database_url:
        fresh = Database(settings, service, storage.TABLES)
        async with fresh.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{service}" CASCADE'))
        await fresh.dispose()
    async with Database(settings, service, storage.TABLES, storage.MIGRATIONS) as db:
        yield db


async def bus_left(db: Database, *, ledger: bool) -> None:
    assert await column(db, OUTBOX, "event_id") == ["recent"]
    if ledger:
        assert await column(db, PROCESSED_EVENT_TABLE, "event_id") == ["recent"]


async def purge(personal: PersonalData, db: Database, settings: Settings) -> dict[str, int]:
    assert await personal.present(db)
    return await personal.purge(db, personal_data_cutoff(settings, NOW))


async def test_intake_purges_its_outbox(settings: Settings) -> None:
    async with service_db(settings, intake_storage, "intake") as db:
        await add_bus_rows(db, ledger=False)
        assert await purge(INTAKE, db, settings) == {"outbox": 2}
        await bus_left(db, ledger=False)


async def test_assignment_purges_cases_closed_past_the_retention(settings: Settings) -> None:
    storage = assignment_storage
    async with service_db(settings, storage, "assignment") as db:
        placements = [
            # report, task, merged into, placed, completed
            ("r-a1", "task-a", "", LONG_AGO, OLD),
            ("r-a2", "task-a", "r-a1", LONG_AGO, OLD),  # a later report of the same case
            ("r-b", "task-b", "", LONG_AGO, RECENT),  # closed within the retention
            ("r-c", "task-c", "", LONG_AGO, None),  # open, however old
        ]
        async with db.session() as session:
            for report_id, task_id, merged_into, placed, completed in placements:
                session.add(
                    storage.Placement(
                        report_id=report_id, task_id=task_id, case_id=task_id,
                        merged_into=merged_into, node_id="h1", grid_id="g1", triage=False,
                        placed_at=placed, completed_at=completed,
                    )
                )  # fmt: skip
                sealed.keep(session, sealed_report(report_id))
            session.add(
                sealed.RevealAudit(
                    at=OLD, staff_subject="s", staff_name="王伟", staff_role="cadre",
                    staff_node_id="g1", report_id="r-a1", field="phone", purpose="核实",
                    outcome="revealed",
                )
            )  # fmt: skip
        await add_bus_rows(db, ledger=True)

        counts = await purge(ASSIGNMENT, db, settings)

        assert counts == {"placement": 2, "sealed_person": 2, "outbox": 2, "processed_event": 1}
        assert await column(db, storage.PLACEMENT, "report_id") == ["r-b", "r-c"]
        assert await column(db, sealed.SEALED_PERSON, "report_id") == ["r-b", "r-c"]
        # The audit names who looked and why, never a value: it stays.
        assert await column(db, sealed.REVEAL_AUDIT, "report_id") == ["r-a1"]
        await bus_left(db, ledger=True)
        # A second pass finds nothing more.
        assert set((await purge(ASSIGNMENT, db, settings)).values()) == {0}


def task(task_id: str, state: str, created: datetime) -> escalation_storage.Task:
    return escalation_storage.Task(
        task_id=task_id, report_id=f"r-{task_id}", node_id="h1", grid_id="g1", triage=False,
        state=state, level=0, assignee_group_id="grp-a",
        summary="张*（电话138****5678）自上海来，住文化苑2号楼2单元201室",
        report_accepted_at=created, created_at=created,
        assigned_at=created,
    )  # fmt: skip


def rows_of(task_id: str, changes: Sequence[tuple[str, datetime]]) -> list[object]:
    """A task's audit trail (to each state at each moment), an escalation, a check-in and its
    slot."""
    storage = escalation_storage
    first = changes[0][1]
    return [
        *(
            storage.TaskChange(
                change_id=f"{task_id}-{n}", task_id=task_id, version=n, action="act",
                from_state="", to_state=state, actor="王伟", channel="http", changed_at=at,
            )
            for n, (state, at) in enumerate(changes, start=1)
        ),
        storage.Escalation(
            escalation_id=f"{task_id}-e", task_id=task_id, level=1, reason="超时未确认",
            group_id="grp-b", raised_at=first,
        ),
        storage.CheckIn(
            check_in_id=f"{task_id}-c", task_id=task_id, temperature=37.8, symptoms="咳嗽",
            channel="page", received_at=first,
        ),
        storage.CheckInSlot(slot_id=f"{task_id}-s", task_id=task_id, due_at=first),
    ]  # fmt: skip


def visit(visit_id: str, at: datetime) -> escalation_storage.HouseholdVisit:
    return escalation_storage.HouseholdVisit(
        visit_id=visit_id, household_id="h1", grid_id="g1", community_id="c1", township_id="t1",
        outcome="met", note="房东李*说他初八回来", visited_at=at, visitor="王伟（包户干部）",
        visitor_subject="p-1", channel="http", recorded_at=at,
    )  # fmt: skip


async def test_escalation_purges_tasks_ended_past_the_retention(settings: Settings) -> None:
    storage = escalation_storage
    async with service_db(settings, storage, "escalation") as db:
        async with db.session() as session:
            session.add(task("t-old", "closed", LONG_AGO))
            session.add_all(rows_of("t-old", [("assigned", LONG_AGO), ("closed", OLD)]))
            # Left again: ended as surely as closed.
            session.add(task("t-left", "left", LONG_AGO))
            session.add_all(rows_of("t-left", [("assigned", LONG_AGO), ("left", OLD)]))
            session.add_all([visit("v-old", OLD), visit("v-recent", RECENT)])
            session.add(task("t-recent", "closed", LONG_AGO))
            session.add_all(rows_of("t-recent", [("assigned", LONG_AGO), ("closed", RECENT)]))
            session.add(task("t-open", "under_control", LONG_AGO))
            session.add_all(rows_of("t-open", [("assigned", LONG_AGO)]))
            session.add(
                storage.ZeroReport(
                    report_id="z-old", grid_id="g1", day="2022-01-01", arrivals=1,
                    under_control=1, abnormal=0, submitted_by="王伟", channel="http",
                    submitted_at=OLD,
                )
            )  # fmt: skip
        await add_bus_rows(db, ledger=True)

        counts = await purge(ESCALATION, db, settings)

        assert counts == {
            "escalation": 2, "task_change": 4, "check_in": 2, "check_in_slot": 2, "task": 2,
            "measure_timer": 0, "test_result": 0, "household_visit": 1, "outbox": 2,
            "processed_event": 1,
        }  # fmt: skip
        assert await column(db, storage.TASK, "task_id") == ["t-open", "t-recent"]
        for table in storage.TABLES:
            if "task_id" in table.c:
                for ended in ("t-old", "t-left"):
                    assert ended not in await column(db, table, "task_id"), table.name
        visits = table_of(storage.HouseholdVisit)
        assert await column(db, visits, "visit_id") == ["v-recent"]
        # Counts per grid name nobody: they stay.
        assert await column(db, table_of(storage.ZeroReport), "report_id") == ["z-old"]
        await bus_left(db, ledger=True)


async def test_notify_purges_deliveries_written_past_the_retention(settings: Settings) -> None:
    storage = notify_storage
    async with service_db(settings, storage, "notify") as db:
        async with db.session() as session:
            for name, at in (("n-old", OLD), ("n-recent", RECENT)):
                session.add(
                    storage.Delivery(
                        notification_id=name, channel="wecom", group_id="grp-a",
                        outcome="delivered", attempts=1, finished_at=at,
                    )
                )  # fmt: skip
                session.add(
                    storage.Attempt(notification_id=name, channel="wecom", number=1, at=at, ok=True)
                )
                session.add(
                    storage.DigestEntry(
                        notification_id=name, channel="wecom", group_id="grp-a", kind="new_task",
                        title="张*自上海来", link="http://x/t/abc", notice=b"whole notice",
                        queued_at=at,
                    )
                )  # fmt: skip
                session.add(
                    storage.FirstDelivery(
                        report_id=f"r-{name}", notification_id=name, channel="wecom",
                        delivered_at=at,
                    )
                )  # fmt: skip
        await add_bus_rows(db, ledger=True)

        counts = await purge(NOTIFY, db, settings)

        assert counts == {
            "delivery": 1, "delivery_attempt": 1, "digest_queue": 1, "report_first_delivery": 1,
            "outbox": 2, "processed_event": 1,
        }  # fmt: skip
        for table in (storage.DELIVERY, storage.ATTEMPT, storage.DIGEST_QUEUE):
            assert await column(db, table, "notification_id") == ["n-recent"], table.name
        assert await column(db, storage.FIRST_DELIVERY, "report_id") == ["r-n-recent"]
        await bus_left(db, ledger=True)


def purged(table: str) -> float:
    return REGISTRY.get_sample_value("gridline_personal_data_purged_total", {"table": table}) or 0


async def test_each_service_s_worker_purges_once_it_starts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, personal_data_retention_days=30)
    before = purged("outbox")
    async with service_db(settings, intake_storage, "intake") as db:
        await add_bus_rows(db, ledger=False)
        async with PersonalDataRetention(db, settings, INTAKE) as worker:
            for _ in range(100):
                if await column(db, OUTBOX, "event_id") == ["recent"]:
                    break
                await asyncio.sleep(0.05)
            assert await worker.alive()
        await bus_left(db, ledger=False)
    assert purged("outbox") == before + 2


async def test_a_database_no_service_has_made_is_left_alone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    db = NOTIFY.database(settings)
    try:
        assert not await NOTIFY.present(db)
    finally:
        await db.dispose()
    assert not (tmp_path / "notify.db").exists()


def test_a_replay_window_longer_than_the_retention_is_refused() -> None:
    # A replay must find the outbox rows and ledger marks the personal-data purge deletes.
    def settings(replay_days: int) -> Settings:
        return Settings(
            outbox_replay_seconds=replay_days * 86_400,
            ledger_retention_seconds=60 * 86_400,
            outbox_retention_seconds=60 * 86_400,
            personal_data_retention_days=30,
        )

    with pytest.raises(ValidationError, match="GRIDLINE_PERSONAL_DATA_RETENTION_DAYS"):
        settings(31)
    assert settings(30).outbox_replay_seconds == 30 * 86_400
