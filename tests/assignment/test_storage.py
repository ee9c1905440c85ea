"""The directory in a real database: round trip, duty state, load, the counts of changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from gridline.db import Database
from gridline.settings import Settings
from services.assignment import storage
from services.assignment.directory import Directory, Group, Person, Role
from services.assignment.grid import Node, NodeKind
from services.assignment.risk import RiskArea
from tests.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path)
    if not POSTGRES_URL:
        pytest.skip("GRIDLINE_TEST_POSTGRES_URL is not set")
    return Settings(data_dir=tmp_path, database_url=request.getfixturevalue("postgres_database"))


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    async with Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as database:
        yield database


def _small() -> Directory:
    nodes = [
        Node("county", NodeKind.COUNTY, "皋兰县", None, "p-county"),
        Node("u1", NodeKind.UNIT, "1单元", "county", "p-a", aliases=("一单元",)),
        Node("h1", NodeKind.HOUSEHOLD, "101室", "u1", address="1单元101室", micro_grid_id=None),
    ]
    people = [
        Person("p-county", "县联防办", Role.COUNTY_OFFICE, "13900000000", "grp-county"),
        Person("p-a", "王伟", Role.CADRE, "13900000001", "grp-a", "wx-a", False, "p-b"),
        Person("p-b", "李娜", Role.CADRE, "13900000002", "grp-b", "wx-b"),
    ]
    groups = [
        Group("grp-county", "县联防办群"),
        Group("grp-a", "王伟工作群"),
        Group("grp-b", "李娜工作群"),
    ]
    return Directory(nodes, people, groups)


async def test_the_directory_round_trips(db: Database) -> None:
    directory = _small()
    async with db.session() as session:
        await storage.replace_directory(session, directory)
    async with db.session() as session:
        loaded = await storage.load_directory(session)
    assert loaded.groups == directory.groups
    assert loaded.people == directory.people
    assert loaded.nodes == directory.nodes


async def test_duty_state_and_load_survive_a_restart(db: Database) -> None:
    directory = _small()
    async with db.session() as session:
        await storage.replace_directory(session, directory)
    on_leave = directory.duty_changed("p-a", on_leave=True, backup_id="p-b")
    async with db.session() as session:
        await storage.save_duty(session, on_leave)
        for i in range(3):
            storage.record_placement(
                session, report_id=f"r{i}", task_id=f"t{i}", node_id="h1", triage=False,
                assignee_id="p-b",
            )  # fmt: skip
    async with db.session() as session:
        loaded = await storage.load_directory(session)
        counts = await storage.open_counts(session)
        placements = (await session.exec(select(storage.Placement))).all()
    assert loaded.people["p-a"].on_leave and loaded.people["p-a"].backup_id == "p-b"
    assert counts == {"p-b": 3}
    assert len(placements) == 3


async def test_a_case_counts_once_and_completes_with_every_report_that_joined_it(
    db: Database,
) -> None:
    async with db.session() as session:
        storage.record_placement(
            session, report_id="c1", task_id="tc1", node_id="h1", grid_id="g1", triage=False,
            assignee_id="p-a", holder_group_id="grp-a", holder_level=1, risk=1,
        )  # fmt: skip
    async with db.session() as session:
        case = await storage.open_case(session, "c1")
        assert case is not None and (case.report_id, case.risk) == ("c1", 1)
        storage.record_merge(session, case, report_id="c2", case_id="c1", risk=3)
        await storage.hand_over(session, "tc1", "grp-b", 2)
    async with db.session() as session:
        case = await storage.open_case(session, "c1")
        counts = await storage.open_counts(session)
        merged = await storage.get_placement(session, "c2")
    assert case is not None and (case.task_id, case.risk) == ("tc1", 3)
    assert (case.holder_group_id, case.holder_level) == ("grp-b", 2)
    assert merged is not None and (merged.task_id, merged.merged_into) == ("tc1", "c1")
    assert counts["p-a"] == 1  # the module's other tests hold other people's cases
    async with db.session() as session:
        assignee = await storage.complete_placement(session, "tc1", datetime.now(UTC))
    async with db.session() as session:
        again = await storage.complete_placement(session, "tc1", datetime.now(UTC))
        rows = (
            await session.exec(select(storage.Placement).where(storage.Placement.task_id == "tc1"))
        ).all()
        reopened = await storage.open_case(session, "c1")
    assert (assignee, again, reopened) == ("p-a", None, None)
    assert len(rows) == 2 and all(r.completed_at is not None for r in rows)


async def test_each_change_replicas_follow_is_counted_with_it_and_only_if_it_commits(
    db: Database,
) -> None:
    async with db.session() as session:
        before = await storage.versions(session)
    directory = _small()
    async with db.session() as session:
        await storage.replace_directory(session, directory)
    async with db.session() as session:
        await storage.save_duty(
            session, directory.duty_changed("p-b", on_leave=True, backup_id=None)
        )
    moment = datetime.now(UTC)
    async with db.session() as session:
        await storage.add_risk_area(session, RiskArea("220100", "high", moment, None, moment))
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await storage.save_duty(session, directory.people["p-a"])
            raise RuntimeError("the change fails after it was written")
    async with db.session() as session:
        after = await storage.versions(session)
        duty = await storage.load_duty(session)
    assert (after.directory, after.duty, after.risk_areas) == (
        before.directory + 1, before.duty + 1, before.risk_areas + 1
    )  # fmt: skip
    assert duty["p-b"] == (True, None) and duty["p-a"] == (False, "p-b")


async def test_a_triage_report_placed_by_hand_sits_on_its_household_from_then_on(
    db: Database,
) -> None:
    async with db.session() as session:
        storage.record_placement(
            session, report_id="t1", task_id="tt1", node_id="cm1", grid_id="", triage=True,
            assignee_id="", holder_group_id="grp-cm1", holder_level=3, risk=1,
        )  # fmt: skip
    async with db.session() as session:
        # Handed up to the township as not in the community's area: still nowhere below it.
        await storage.hand_over(session, "tt1", "grp-town", 4)
    async with db.session() as session:
        placed = await storage.get_placement(session, "t1")
    assert placed is not None and (placed.node_id, placed.triage) == ("cm1", True)
    async with db.session() as session:
        await storage.hand_over(session, "tt1", "grp-a", 1, household_id="h1", grid_id="g1")
    async with db.session() as session:
        placed = await storage.get_placement(session, "t1")
    assert placed is not None
    assert (placed.node_id, placed.grid_id, placed.triage) == ("h1", "g1", False)
    assert (placed.holder_group_id, placed.holder_level) == ("grp-a", 1)
