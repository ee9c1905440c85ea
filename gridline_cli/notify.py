"""`gridline notify`: test a group's robot with a message now; seal secrets for the groups file."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, command_settings
from services.notify import robot_check

app = typer.Typer(help="Notify: robots, SMS and the groups file.", no_args_is_help=True)
console = Console()


@app.command("test")
def test_group(
    group: Annotated[str, typer.Argument(help="The group id, as in the groups file.")],
    phone: Annotated[str, typer.Option(help="Also send a test SMS to this mobile.")] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Send a test message through GROUP's robot (and SMS) now; exit 1 if the vendor refuses."""
    settings = command_settings(data_dir)
    try:
        results = asyncio.run(robot_check.send_test(settings, group, phone))
    except robot_check.NoTestTarget as exc:
        raise typer.BadParameter(str(exc), param_hint="GROUP") from exc
    except robot_check.GroupsFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="GRIDLINE_NOTIFY_GROUPS_FILE") from exc
    failed = False
    for channel, error in results:
        if error:
            failed = True
            console.print(f"[red]{channel}: refused[/red] {error}")
        else:
            console.print(f"[green]{channel}: sent[/green]")
    if failed:
        raise typer.Exit(1)


@app.command("seal")
def seal(
    value: Annotated[str, typer.Argument(help="A key, token or secret.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print VALUE sealed with the PII key, as the groups file stores secrets."""
    typer.echo(robot_check.seal(command_settings(data_dir), value))
