"""`directory_version`: one row counting the changes every replica follows.

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
    version = op.create_table(
        "directory_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("directory", sa.Integer(), nullable=False),
        sa.Column("duty", sa.Integer(), nullable=False),
        sa.Column("risk_areas", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The one row every change updates: it exists from the start.
    op.bulk_insert(version, [{"id": 1, "directory": 0, "duty": 0, "risk_areas": 0}])


def downgrade() -> None:
    op.drop_table("directory_version")
