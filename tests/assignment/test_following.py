"""A replica follows the database: it reloads only what changed, and a reload does not stall it."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridline.db import Database
from gridline.settings import Settings
from services.assignment import storage
from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from services.assignment.following import Follower
from services.assignment.grid import Node, NodeKind
from services.assignment.risk import RiskArea
from tests.assignment.support import small_county


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database(
        Settings(data_dir=tmp_path), "assignment", storage.TABLES, storage.MIGRATIONS
    ) as database:
        yield database


def _small(*extra: Node) -> Directory:
    nodes = [
        Node("county", NodeKind.COUNTY, "皋兰县", None, "p-county"),
        Node("u1", NodeKind.UNIT, "1单元", "county", "p-a"),
        Node("h1", NodeKind.HOUSEHOLD, "101室", "u1", address="1单元101室"),
        *extra,
    ]
    return small_county(nodes)


async def test_a_follower_reloads_only_the_part_whose_count_moved(db: Database) -> None:
    async with db.session() as session:
        await storage.replace_directory(session, _small())
    follower = await Follower.load(db)
    directory, areas = follower.current.directory, follower.current.areas

    await follower.refresh()
    assert (follower.current.directory, follower.current.areas) == (directory, areas)

    async with db.session() as session:
        await storage.save_duty(
            session, directory.duty_changed("p-a", on_leave=True, backup_id="p-b")
        )
    await follower.refresh()
    assert follower.current.directory is directory  # duty is applied in place, not reloaded
    assert directory.people["p-a"].on_leave and directory.people["p-a"].backup_id == "p-b"
    assert follower.current.areas is areas

    moment = datetime.now(UTC)
    async with db.session() as session:
        await storage.add_risk_area(session, RiskArea("220100", "high", moment, None, moment))
    await follower.refresh()
    assert follower.current.areas.level_of("220102", moment) == "high"
    assert follower.current.directory is directory

    async with db.session() as session:
        await storage.replace_directory(
            session, _small(Node("h2", NodeKind.HOUSEHOLD, "102室", "u1", address="1单元102室"))
        )
    await follower.refresh()
    assert follower.current.directory is not directory
    assert "h2" in follower.current.directory.nodes
    # The imported file's duty state, not the one before the import.
    assert not follower.current.directory.people["p-a"].on_leave


async def test_reloading_a_whole_county_leaves_the_event_loop_free(db: Database) -> None:
    county = generate()
    async with db.session() as session:
        await storage.replace_directory(
            session, Directory(county.nodes, county.people, county.groups, county.micro_grids)
        )
    follower = await Follower.load(db)
    async with db.session() as session:
        await storage.replace_directory(session, follower.current.directory)
    gaps: list[float] = []
    reloading = True

    async def placing() -> None:
        # Stands for the consumer: how long it would wait for the loop between two records.
        while reloading:
            started = time.perf_counter()
            await asyncio.sleep(0)
            gaps.append(time.perf_counter() - started)

    # A collection of the whole heap pauses every thread, whoever triggers it; what is measured
    # here is the reload's own work.
    gc.disable()
    try:
        other = asyncio.create_task(placing())
        started = time.perf_counter()
        await follower.refresh()
        took = time.perf_counter() - started
        reloading = False
        await other
    finally:
        gc.enable()
    assert len(follower.current.directory) == len(county.nodes)
    # Built on the loop, the directory alone would hold it for about half of the reload.
    assert max(gaps) < took / 4, (max(gaps), took)
