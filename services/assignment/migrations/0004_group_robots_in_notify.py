"""Groups keep no robot: notify's groups file is the one place robots and secrets live.

Nothing read the dropped columns; notify never sent through them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directory_group", schema=None) as batch_op:
        batch_op.drop_column("robot_secret_sealed")
        batch_op.drop_column("robot_webhook")


def downgrade() -> None:
    with op.batch_alter_table("directory_group", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "robot_webhook",
                sqlmodel.sql.sqltypes.AutoString(length=500),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(sa.Column("robot_secret_sealed", sa.LargeBinary(), nullable=True))
