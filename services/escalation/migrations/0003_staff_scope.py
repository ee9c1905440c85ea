"""Where each task and each grid's zero-report sits (community, township), for staff scope.

Rows from before get empty places: only the county office sees them.

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


def _place_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("community_id", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("township_id", sa.String(length=64), nullable=False, server_default=""),
    ]


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        for column in _place_columns():
            batch_op.add_column(column)
        batch_op.create_index(batch_op.f("ix_task_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_township_id"), ["township_id"], unique=False)
    with op.batch_alter_table("zero_report", schema=None) as batch_op:
        for column in _place_columns():
            batch_op.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("zero_report", schema=None) as batch_op:
        batch_op.drop_column("township_id")
        batch_op.drop_column("community_id")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_township_id"))
        batch_op.drop_index(batch_op.f("ix_task_grid_id"))
        batch_op.drop_index(batch_op.f("ix_task_community_id"))
        batch_op.drop_column("township_id")
        batch_op.drop_column("community_id")
