"""`integrator.sandbox`: integrators whose posts are validate-only; existing ones stay real.

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
    with op.batch_alter_table("integrator", schema=None) as batch_op:
        # sa.false(), not a literal 0: PostgreSQL refuses an integer default for a boolean.
        batch_op.add_column(
            sa.Column("sandbox", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("integrator", schema=None) as batch_op:
        batch_op.drop_column("sandbox")
