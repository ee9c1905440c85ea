"""What `gridline directory` calls: assignment's directory in and out of a file.

Only assignment writes its tables; the CLI calls these instead of opening them itself.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.db import Database
from gridline.settings import Settings
from services.assignment import directory_file, storage
from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from services.assignment.directory_file import DirectoryFileError, RowError
from services.assignment.grid import NodeKind

__all__ = ["DirectoryFileError", "export_directory", "import_directory", "write_demo_county"]


async def import_directory(settings: Settings, path: Path) -> Directory:
    """Replace the stored directory with the file's, all or nothing; the imported directory.

    The tables and the directory's version change in one transaction: running replicas load
    the new directory within `GRIDLINE_ASSIGNMENT_FOLLOW_SECONDS`, without a restart. A file
    that cannot be used raises `DirectoryFileError`, whose `errors` name each bad row and
    field; nothing is changed then. A file that drops a node open tasks are held at is such
    a file (`_dropped_with_open_tasks`): those tasks are closed or reassigned first.
    """
    directory = directory_file.read(path)
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db,
        db.session() as session,
    ):
        dropped = await _dropped_with_open_tasks(session, directory)
        if dropped:
            raise DirectoryFileError(dropped)
        await storage.replace_directory(session, directory)
    return directory


async def _dropped_with_open_tasks(session: AsyncSession, directory: Directory) -> list[RowError]:
    """One error for each node open tasks are held at that `directory` no longer has.

    A task's deadlines go up the chain of its node: a household, or for a task still to be
    placed (triage) its community, else its grid. A directory without that node would leave
    the task with no one above it, so such an import is refused, naming the node and a task.
    A task reassigned to another household since it was placed is known to escalation alone:
    escalation sets aside a task whose node is gone and reports it (docs/escalation.md).
    """
    placements = (
        await session.exec(
            select(
                storage.Placement.task_id,
                storage.Placement.node_id,
                storage.Placement.grid_id,
                storage.Placement.triage,
            ).where(
                col(storage.Placement.completed_at).is_(None), storage.Placement.merged_into == ""
            )
        )
    ).all()
    if not placements:
        return []
    stored = await _stored_tree(session)
    held: dict[str, list[str]] = {}
    for task_id, node_id, grid_id, triage in placements:
        node = (_community_of(stored, node_id) or grid_id) if triage else node_id
        if node and node not in directory.nodes:
            held.setdefault(node, []).append(task_id)
    return [
        RowError(
            f"node {node_id}",
            "id",
            f"仍有{len(tasks)}项未办结的任务在此节点（如任务{min(tasks)}），新目录删去了它；"
            "请先办结或改派这些任务，或在目录中保留该节点",
        )
        for node_id, tasks in sorted(held.items())
    ]


async def _stored_tree(session: AsyncSession) -> dict[str, tuple[str, str | None]]:
    """The stored directory's nodes: kind and parent by id."""
    rows = await session.exec(
        select(
            storage.DirectoryNode.id, storage.DirectoryNode.kind, storage.DirectoryNode.parent_id
        )
    )
    return {node_id: (kind, parent_id) for node_id, kind, parent_id in rows.all()}


def _community_of(tree: dict[str, tuple[str, str | None]], node_id: str) -> str | None:
    """The node itself or its nearest ancestor that is a community, in `tree`."""
    current: str | None = node_id
    while current is not None and current in tree:
        kind, parent_id = tree[current]
        if kind == NodeKind.COMMUNITY:
            return current
        current = parent_id
    return None


async def export_directory(settings: Settings, path: Path) -> Directory:
    """Write the stored directory to `path` in the format its name ends with; the directory."""
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db,
        db.session() as session,
    ):
        directory = await storage.load_directory(session)
    directory_file.write(directory, path)
    return directory


def write_demo_county(path: Path, seed: int = 2022) -> Directory:
    """Write the deterministic demo county to `path` in the import format; the county."""
    county = generate(seed)
    directory = Directory(county.nodes, county.people, county.groups, county.micro_grids)
    directory_file.write(directory, path)
    return directory
