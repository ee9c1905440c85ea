"""Intake's own tables: integrators and their API keys (hashes only)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Table, false
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.outbox import OUTBOX_TABLES
from gridline.db import table_of, utc_timestamp


class Integrator(SQLModel, table=True):
    """A party allowed to post reports, and which sources it may post."""

    __tablename__ = "integrator"

    integrator_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    scopes: str = Field(max_length=200, description="Space-separated sources it may post.")
    sandbox: bool = Field(
        default=False,
        # Integrators of the release before sandboxes are real ones.
        sa_column_kwargs={"server_default": false()},
        description="Every post of its keys is validate-only: answered, never published.",
    )
    created_at: datetime = Field(sa_type=utc_timestamp())
    revoked_at: datetime | None = Field(default=None, sa_type=utc_timestamp())

    @property
    def scope_set(self) -> set[str]:
        """The sources it may post."""
        return set(self.scopes.split())


class ApiKey(SQLModel, table=True):
    """One API key of an integrator: its id and the hash of its secret, never the secret."""

    __tablename__ = "integrator_key"

    key_id: str = Field(primary_key=True, max_length=64)
    integrator_id: str = Field(index=True, max_length=64)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=utc_timestamp())
    revoked_at: datetime | None = Field(default=None, sa_type=utc_timestamp())


# This service's Alembic revisions (`gridline.db.Database` upgrades to the newest at start).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

TABLES: list[Table] = [
    table_of(Integrator),
    table_of(ApiKey),
    # Intake keeps what it published only when the broker may forget it (the embedded one).
    *OUTBOX_TABLES,
]


async def active_key(session: AsyncSession, key_id: str) -> tuple[ApiKey, Integrator] | None:
    """A key that is not revoked, with its integrator that is not revoked either."""
    row = (
        await session.exec(
            select(ApiKey, Integrator)
            .join(Integrator, col(Integrator.integrator_id) == col(ApiKey.integrator_id))
            .where(ApiKey.key_id == key_id)
            .where(col(ApiKey.revoked_at).is_(None))
            .where(col(Integrator.revoked_at).is_(None))
        )
    ).first()
    return (row[0], row[1]) if row else None


async def active_keys(session: AsyncSession, integrator_id: str) -> list[ApiKey]:
    """An integrator's keys that are not revoked, oldest first."""
    rows = await session.exec(
        select(ApiKey)
        .where(ApiKey.integrator_id == integrator_id)
        .where(col(ApiKey.revoked_at).is_(None))
        .order_by(col(ApiKey.created_at))
    )
    return list(rows)
