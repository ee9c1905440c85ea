"""Quiet hours: a digest entry may be held until the end of its recipient's quiet hours.

A downgrade drops the column: entries still held then go at the next digest, as over-budget ones.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digest_queue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_digest_queue_held_until"), ["held_until"])


def downgrade() -> None:
    with op.batch_alter_table("digest_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digest_queue_held_until"))
        batch_op.drop_column("held_until")
