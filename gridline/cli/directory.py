"""`gridline directory`: import and export assignment's directory, write the demo county."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gridline.db import Database
from gridline.personal import Sealer
from gridline.settings import Settings
from services.assignment import directory_file, storage
from services.assignment.demo_county import generate
from services.assignment.directory import Directory

app = typer.Typer(
    help="Assignment's grid directory as a file (CSV, YAML or JSON).", no_args_is_help=True
)
console = Console()
FILE = Annotated[Path, typer.Argument(help="A .csv, .yaml, .yml or .json file.")]


async def _store(directory: Directory, settings: Settings, sealer: Sealer) -> None:
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db,
        db.session() as session,
    ):
        await storage.replace_directory(session, directory, sealer)


async def _load(settings: Settings, sealer: Sealer) -> Directory:
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db,
        db.session() as session,
    ):
        return await storage.load_directory(session, sealer)


@app.command("import")
def import_(file: FILE) -> None:
    """Replace the stored directory with the file's, all or nothing; restart assignment after."""
    settings = Settings()
    sealer = Sealer(settings.pii_key.get_secret_value())
    try:
        directory = directory_file.read(file, sealer)
    except directory_file.DirectoryFileError as error:
        for problem in error.errors:
            console.print(f"[red]{problem}[/red]", highlight=False)
        console.print(f"[red]{len(error.errors)} problem(s); nothing was changed.[/red]")
        raise typer.Exit(1) from error
    asyncio.run(_store(directory, settings, sealer))
    console.print(f"imported {len(directory.nodes)} nodes and {len(directory.people)} people")


@app.command("export")
def export(file: FILE) -> None:
    """Write the stored directory to a file in the format its name ends with."""
    settings = Settings()
    sealer = Sealer(settings.pii_key.get_secret_value())
    directory = asyncio.run(_load(settings, sealer))
    directory_file.write(directory, file, sealer)
    console.print(f"exported {len(directory.nodes)} nodes to {file}")


@app.command("demo-county")
def demo_county(
    file: FILE,
    seed: Annotated[int, typer.Option(help="Seed of the county.")] = 2022,
) -> None:
    """Write the deterministic demo county in the import format."""
    settings = Settings()
    county = generate(seed)
    directory = Directory(county.nodes, county.people, county.groups, county.micro_grids)
    directory_file.write(directory, file, Sealer(settings.pii_key.get_secret_value()))
    console.print(f"wrote the demo county ({len(county.nodes)} nodes) to {file}")
