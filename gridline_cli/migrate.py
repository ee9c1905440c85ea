"""`gridline migrate`: bring each service's database to its newest revision, or write a new one."""

from __future__ import annotations

import asyncio
import importlib
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from alembic import command
from alembic.migration import MigrationContext
from rich.console import Console
from sqlalchemy import MetaData, create_engine

from gridline.db import Database, alembic_config
from gridline.settings import Settings
from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, command_settings

SERVICES = ("intake", "assignment", "escalation", "notify")

app = typer.Typer(
    help="Each service's database schema (Alembic revisions in services/<name>/migrations).",
    invoke_without_command=True,
)
console = Console()


def _storage(service: str) -> ModuleType:
    if service not in SERVICES:
        raise typer.BadParameter(f"no service {service!r}; one of {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{service}.storage")


@app.callback()
def upgrade(
    ctx: typer.Context,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: Annotated[
        str,
        typer.Option(
            help="PostgreSQL URL; empty: the one `gridline up` uses, else the setting.",
        ),
    ] = "",
) -> None:
    """Upgrade every service's database to its newest revision (services do it at start too)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = command_settings(data_dir, database_url=database_url)
    for service in SERVICES:
        revision = asyncio.run(_upgrade(settings, service))
        console.print(f"{service}: at revision {revision}")


async def _upgrade(settings: Settings, service: str) -> str:
    storage = _storage(service)
    async with (
        Database(settings, service, storage.TABLES, storage.MIGRATIONS) as database,
        database.engine.connect() as conn,
    ):
        revision = await conn.run_sync(
            lambda sync: MigrationContext.configure(
                sync, opts={"version_table_schema": database.schema}
            ).get_current_revision()
        )
    return str(revision)


@app.command()
def revision(
    service: Annotated[str, typer.Argument(help="intake, assignment, escalation or notify.")],
    message: Annotated[str, typer.Argument(help="What the revision changes, in a few words.")],
) -> None:
    """Write a new revision of a service from the difference between its tables and the newest
    revision (review it before committing)."""
    storage = _storage(service)
    metadata = MetaData()
    for table in storage.TABLES:
        table.to_metadata(metadata)
    migrations: Path = storage.MIGRATIONS
    number = f"{len(list(migrations.glob('[0-9]*.py'))) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        with engine.begin() as conn:
            config = alembic_config(conn, migrations, metadata, None)
            command.upgrade(config, "head")
            command.revision(config, message=message, autogenerate=True, rev_id=number)
        engine.dispose()
