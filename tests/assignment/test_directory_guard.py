"""A directory import that drops a node open tasks are held at is refused, naming the node;
once those tasks are done, the same file imports."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridline.db import Database
from gridline.settings import Settings
from gridline_cli.main import app
from services.assignment import directory_file, storage
from services.assignment.directory import Directory
from services.assignment.directory_admin import DirectoryFileError, import_directory
from services.assignment.grid import Node, NodeKind
from tests.assignment.support import small_county

BASE = [
    Node("c", NodeKind.COUNTY, "皋兰县", None, "p-county"),
    Node("t", NodeKind.TOWNSHIP, "石洞镇", "c"),
    Node("cm", NodeKind.COMMUNITY, "三川社区", "t"),
    Node("g", NodeKind.GRID, "文化苑", "cm"),
    Node("b", NodeKind.BUILDING, "1号楼", "g"),
    Node("u", NodeKind.UNIT, "1单元", "b", "p-a"),
    Node("h1", NodeKind.HOUSEHOLD, "101室", "u", address="皋兰县文化苑1号楼1单元101室"),
]
H2 = Node("h2", NodeKind.HOUSEHOLD, "102室", "u", address="皋兰县文化苑1号楼1单元102室")


def write(directory: Directory, path: Path) -> Path:
    directory_file.write(directory, path)
    return path


async def stored_nodes(settings: Settings) -> set[str]:
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db,
        db.session() as session,
    ):
        return set((await storage.load_directory(session)).nodes)


async def place(settings: Settings, task_id: str, node_id: str, *, triage: bool = False) -> None:
    """An open task placed at `node_id` (of grid `g`), as the reports consumer records it."""
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db,
        db.session() as session,
    ):
        storage.record_placement(
            session, report_id=f"r-{task_id}", task_id=task_id, node_id=node_id, grid_id="g",
            triage=triage, assignee_id="p-a",
        )  # fmt: skip


async def complete(settings: Settings, task_id: str) -> None:
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db,
        db.session() as session,
    ):
        await storage.complete_placement(session, task_id, datetime.now(UTC))


async def test_dropping_a_household_with_an_open_task_is_refused_until_the_task_is_done(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    await import_directory(settings, write(small_county([*BASE, H2]), tmp_path / "v1.csv"))
    await place(settings, "task-at-h2", "h2")
    await place(settings, "task-at-h1", "h1")
    without_h2 = write(small_county(BASE), tmp_path / "v2.csv")

    with pytest.raises(DirectoryFileError) as refused:
        await import_directory(settings, without_h2)

    [error] = refused.value.errors
    assert (error.where, error.field) == ("node h2", "id")
    assert "仍有1项未办结的任务" in error.message and "task-at-h2" in error.message
    assert await stored_nodes(settings) == {n.id for n in [*BASE, H2]}  # nothing changed

    await complete(settings, "task-at-h2")
    await import_directory(settings, without_h2)
    assert await stored_nodes(settings) == {n.id for n in BASE}


async def test_a_triage_task_holds_its_community_even_when_its_own_node_stays(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    await import_directory(settings, write(small_county(BASE), tmp_path / "v1.yaml"))
    # Placed at the building; its deadlines go up the community's chain.
    await place(settings, "task-triage", "b", triage=True)
    renamed = [
        Node("cm-new", NodeKind.COMMUNITY, "三川新社区", "t") if n.id == "cm" else n for n in BASE
    ]
    regrouped = [
        Node("g", NodeKind.GRID, "文化苑", "cm-new") if n.id == "g" else n for n in renamed
    ]

    with pytest.raises(DirectoryFileError) as refused:
        await import_directory(settings, write(small_county(regrouped), tmp_path / "v2.yaml"))

    assert [e.where for e in refused.value.errors] == ["node cm"]


def test_the_cli_names_the_node_and_changes_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    runner = CliRunner(env={"GRIDLINE_DATA_DIR": str(tmp_path)})
    first = runner.invoke(
        app, ["directory", "import", str(write(small_county([*BASE, H2]), tmp_path / "v1.json"))]
    )
    assert first.exit_code == 0, first.output
    asyncio.run(place(settings, "task-at-h2", "h2"))
    refused = runner.invoke(
        app, ["directory", "import", str(write(small_county(BASE), tmp_path / "v2.json"))]
    )
    assert refused.exit_code == 1
    assert "node h2" in refused.output and "nothing was changed" in refused.output
