"""`gridline directory`: import and export assignment's directory, write the demo county."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gridline.settings import Settings
from services.assignment import directory_admin

app = typer.Typer(
    help="Assignment's grid directory as a file (CSV, YAML or JSON).", no_args_is_help=True
)
console = Console()
FILE = Annotated[Path, typer.Argument(help="A .csv, .yaml, .yml or .json file.")]


@app.command("import")
def import_(file: FILE) -> None:
    """Replace the stored directory with the file's, all or nothing; running assignment
    replicas load it within a second or two, without a restart."""
    try:
        directory = asyncio.run(directory_admin.import_directory(Settings(), file))
    except directory_admin.DirectoryFileError as error:
        for problem in error.errors:
            console.print(f"[red]{problem}[/red]", highlight=False)
        console.print(f"[red]{len(error.errors)} problem(s); nothing was changed.[/red]")
        raise typer.Exit(1) from error
    console.print(f"imported {len(directory.nodes)} nodes and {len(directory.people)} people")


@app.command("export")
def export(file: FILE) -> None:
    """Write the stored directory to a file in the format its name ends with."""
    directory = asyncio.run(directory_admin.export_directory(Settings(), file))
    console.print(f"exported {len(directory.nodes)} nodes to {file}")


@app.command("demo-county")
def demo_county(
    file: FILE,
    seed: Annotated[int, typer.Option(help="Seed of the county.")] = 2022,
) -> None:
    """Write the deterministic demo county in the import format."""
    county = directory_admin.write_demo_county(file, seed)
    console.print(f"wrote the demo county ({len(county.nodes)} nodes) to {file}")
