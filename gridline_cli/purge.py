"""`gridline purge`: delete every service's personal data past its retention, now.

The services do the same every hour (`PersonalDataRetention`); this is for an operator who
lowered `GRIDLINE_PERSONAL_DATA_RETENTION_DAYS`, or must show that nothing older is kept. Each
service's own rule is its `services/<name>/retention.py`; docs/security.md ("Retention") has
them all.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from gridline.bus.retention import PersonalData, personal_data_cutoff
from gridline.settings import Settings
from gridline.timestamps import now
from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, command_settings, describe_database
from services.assignment.retention import PERSONAL_DATA as ASSIGNMENT
from services.escalation.retention import PERSONAL_DATA as ESCALATION
from services.intake.retention import PERSONAL_DATA as INTAKE
from services.notify.retention import PERSONAL_DATA as NOTIFY

SERVICES: dict[str, PersonalData] = {p.service: p for p in (INTAKE, ASSIGNMENT, ESCALATION, NOTIFY)}

console = Console()


def command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: Annotated[
        str,
        typer.Option(help="PostgreSQL URL; empty: the one `gridline up` uses, else the setting."),
    ] = "",
    service: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this service (repeatable): intake, assignment, escalation, notify."
        ),
    ] = None,
) -> None:
    """Delete the personal data past GRIDLINE_PERSONAL_DATA_RETENTION_DAYS in every service's
    database (closed cases and tasks, old deliveries, outbox and ledger rows) and say how many
    rows went from each table."""
    unknown = sorted(set(service or ()) - SERVICES.keys())
    if unknown:
        raise typer.BadParameter(
            f"no service {', '.join(unknown)}; one of {', '.join(SERVICES)}",
            param_hint="--service",
        )
    settings = command_settings(data_dir, database_url=database_url)
    chosen = [SERVICES[name] for name in service] if service else list(SERVICES.values())
    cutoff = personal_data_cutoff(settings, now())
    console.print(
        f"purging personal data closed or written before {cutoff:%Y-%m-%d %H:%M} UTC "
        f"({settings.personal_data_retention_days} days) in {describe_database(settings)}"
    )
    for name, counts in asyncio.run(_purge(settings, chosen, cutoff)).items():
        if counts is None:
            console.print(
                f"{name}: no database of this release yet; skipped "
                "(start the service or run `gridline migrate`)"
            )
            continue
        listed = ", ".join(f"{table} {count}" for table, count in counts.items())
        console.print(f"{name}: deleted {listed}")


async def _purge(
    settings: Settings, chosen: list[PersonalData], cutoff: datetime
) -> dict[str, dict[str, int] | None]:
    """Each chosen service's purge (None: its database is not there to purge)."""
    done: dict[str, dict[str, int] | None] = {}
    for personal in chosen:
        db = personal.database(settings)
        try:
            done[personal.service] = (
                await personal.purge(db, cutoff) if await personal.present(db) else None
            )
        finally:
            await db.dispose()
    return done
