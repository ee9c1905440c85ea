"""What `gridline directory` calls: assignment's directory in and out of a file.

Only assignment writes its tables; the CLI calls these instead of opening them itself.
"""

from __future__ import annotations

from pathlib import Path

from gridline.db import Database
from gridline.settings import Settings
from services.assignment import directory_file, storage
from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from services.assignment.directory_file import DirectoryFileError

__all__ = ["DirectoryFileError", "export_directory", "import_directory", "write_demo_county"]


async def import_directory(settings: Settings, path: Path) -> Directory:
    """Replace the stored directory with the file's, all or nothing; the imported directory.

    The tables and the directory's version change in one transaction: running replicas load
    the new directory within `GRIDLINE_ASSIGNMENT_FOLLOW_SECONDS`, without a restart. A file
    that cannot be used raises `DirectoryFileError`, whose `errors` name each bad row and
    field; nothing is changed then.
    """
    directory = directory_file.read(path)
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db,
        db.session() as session,
    ):
        await storage.replace_directory(session, directory)
    return directory


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
