"""`sealed_person`: each report's ID number and phone, sealed, with the key id; `reveal_audit`:
every request to see them; placements indexed by completion for the retention.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sealed_person",
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("person_key", sa.String(length=64), nullable=False),
        sa.Column("id_number_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("phone_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("report_id"),
    )
    with op.batch_alter_table("sealed_person", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sealed_person_key_id"), ["key_id"], unique=False)
    op.create_table(
        "reveal_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("staff_subject", sa.String(length=100), nullable=False),
        sa.Column("staff_name", sa.String(length=100), nullable=False),
        sa.Column("staff_role", sa.String(length=32), nullable=False),
        sa.Column("staff_node_id", sa.String(length=64), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reveal_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reveal_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_reveal_audit_report_id"), ["report_id"], unique=False)
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placement_completed_at"), ["completed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_completed_at"))
    op.drop_table("reveal_audit")
    op.drop_table("sealed_person")
