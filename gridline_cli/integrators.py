"""`gridline integrators`: create, list, rotate and revoke the integrators intake accepts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from gridline.settings import Settings
from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, command_settings
from services.intake import integrator_admin
from services.intake.integrator_admin import SOURCE_NAMES, IssuedKey

app = typer.Typer(help="Integrators allowed to post reports, and their API keys.")
console = Console()
T = TypeVar("T")


def _run(data_dir: Path, action: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    """Run one of intake's exported integrator actions against the database intake uses."""
    settings = command_settings(data_dir)
    try:
        return asyncio.run(action(settings))
    except (integrator_admin.UnknownIntegrator, ValueError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None


def _show_key(issued: IssuedKey) -> None:
    console.print(f"integrator: {issued.integrator_id}")
    console.print(f"key id:     {issued.key_id}")
    console.print(f"secret:     {issued.secret}")
    console.print("The secret is shown once; intake keeps only its hash.")


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The integrator's name.")],
    scope: Annotated[
        list[str], typer.Option(help=f"A source it may post: {', '.join(SOURCE_NAMES)}.")
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    sandbox: Annotated[
        bool,
        typer.Option(help="Every post is validate-only: answered as for real, nothing published."),
    ] = False,
) -> None:
    """Create an integrator with one key."""
    _show_key(
        _run(
            data_dir,
            lambda settings: integrator_admin.create(settings, name, scope, sandbox=sandbox),
        )
    )


@app.command("list")
def list_integrators(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Every integrator, its scopes and active key ids (never secrets)."""
    views = _run(data_dir, integrator_admin.list_all)
    table = Table(title="Integrators")
    for column in ("id", "name", "scopes", "active keys", "revoked"):
        table.add_column(column)
    for view in views:
        revoked = view.revoked_at.isoformat() if view.revoked_at else ""
        table.add_row(
            view.integrator_id,
            view.name,
            " ".join(view.scopes),
            " ".join(view.active_keys),
            revoked,
        )
    console.print(table)


@app.command()
def rotate(
    integrator_id: Annotated[str, typer.Argument(help="The integrator.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Issue a new key; the previous one keeps working, an older one is revoked."""
    _show_key(_run(data_dir, lambda settings: integrator_admin.rotate(settings, integrator_id)))


@app.command()
def revoke(
    integrator_id: Annotated[str, typer.Argument(help="The integrator.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Stop an integrator and all its keys at once."""
    _run(data_dir, lambda settings: integrator_admin.revoke(settings, integrator_id))
    console.print(f"revoked {integrator_id}")


@app.command("revoke-key")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Stop one key at once."""
    _run(data_dir, lambda settings: integrator_admin.revoke_key(settings, key_id))
    console.print(f"revoked {key_id}")
