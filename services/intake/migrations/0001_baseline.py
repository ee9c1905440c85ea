"""The schema of the release before migrations (its tables as `create_all` made them).

Revision ID: 0001
Revises:
Create Date: 2026-12-04 14:21:41.084261
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "integrator",
        sa.Column("integrator_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("scopes", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("integrator_id"),
    )
    op.create_table(
        "integrator_key",
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("integrator_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("secret_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    with op.batch_alter_table("integrator_key", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_integrator_key_integrator_id"), ["integrator_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("integrator_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integrator_key_integrator_id"))

    op.drop_table("integrator_key")
    op.drop_table("integrator")
