"""`gridline directory`: import and export assignment's directory, write the demo county."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, command_settings, describe_database
from services.assignment import directory_admin

app = typer.Typer(
    help="Assignment's grid directory as a file (CSV, YAML or JSON); docs/directory.md.",
    no_args_is_help=True,
)
console = Console()
FILE = Annotated[Path, typer.Argument(help="A .csv, .yaml, .yml or .json file.")]


@contextmanager
def _working(what: str) -> Iterator[None]:
    """A live line saying what runs and for how long.

    The import checks and stores the whole file in one call of assignment's, all or nothing, so
    there is no count to show until it is done: the line shows that it is still going.
    """
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    # For someone watching: piped or captured output gets the result lines only.
    shown = console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not shown) as progress:
        progress.add_task(what, total=None)
        yield


@app.command("import")
def import_(file: FILE, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Replace the stored directory with the file's, all or nothing; running assignment
    replicas load it within a second or two, without a restart."""
    settings = command_settings(data_dir)
    where = describe_database(settings)
    try:
        with _working(f"importing {file.name}: checking every row, then storing"):
            directory = asyncio.run(directory_admin.import_directory(settings, file))
    except directory_admin.DirectoryFileError as error:
        for problem in error.errors:
            console.print(f"[red]{problem}[/red]", highlight=False)
        console.print(f"[red]{len(error.errors)} problem(s); nothing was changed.[/red]")
        raise typer.Exit(1) from error
    console.print(
        f"imported {len(directory.nodes)} nodes and {len(directory.people)} people into {where}",
        highlight=False,
        soft_wrap=True,  # one line, whole when copied or grepped
    )


@app.command("export")
def export(file: FILE, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Write the stored directory to a file in the format its name ends with."""
    settings = command_settings(data_dir)
    with _working(f"exporting to {file.name}"):
        directory = asyncio.run(directory_admin.export_directory(settings, file))
    console.print(
        f"exported {len(directory.nodes)} nodes of {describe_database(settings)} to {file}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("demo-county")
def demo_county(
    file: FILE,
    seed: Annotated[int, typer.Option(help="Seed of the county.")] = 2022,
) -> None:
    """Write the deterministic demo county in the import format."""
    county = directory_admin.write_demo_county(file, seed)
    console.print(f"wrote the demo county ({len(county.nodes)} nodes) to {file}")
