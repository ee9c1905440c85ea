"""The schema of the release before migrations (its tables as `create_all` made them).

Revision ID: 0001
Revises:
Create Date: 2026-12-04 14:21:51.862123
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from gridline.migrations import runtime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery",
        sa.Column("notification_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", "channel"),
    )
    op.create_table(
        "delivery_attempt",
        sa.Column("notification_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", "channel", "number"),
    )
    op.create_table(
        "digest_queue",
        sa.Column("notification_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("link", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("notice", sa.LargeBinary(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("notification_id", "channel"),
    )
    with op.batch_alter_table("digest_queue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digest_queue_digest_id"), ["digest_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_digest_queue_group_id"), ["group_id"], unique=False)

    runtime.create_ledger()
    op.create_table(
        "report_first_delivery",
        sa.Column("report_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("notification_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("report_id"),
    )


def downgrade() -> None:
    op.drop_table("report_first_delivery")
    runtime.drop_ledger()
    with op.batch_alter_table("digest_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digest_queue_group_id"))
        batch_op.drop_index(batch_op.f("ix_digest_queue_digest_id"))

    op.drop_table("digest_queue")
    op.drop_table("delivery_attempt")
    op.drop_table("delivery")
