"""The register (台账): each report's sealed full name, masks and arrival beside its sealed ID
number and phone (`sealed_person`); a register that revealed people is one `reveal_audit` row
(`reports` of them), its reports in `reveal_audit_report`.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sealed_person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_sealed", sa.LargeBinary(), nullable=True))
        for name, length in (
            ("name_masked", 64),
            ("id_number_masked", 32),
            ("phone_masked", 32),
            ("origin_name", 100),
            ("address", 200),
            ("transport", 8),
        ):
            batch_op.add_column(
                sa.Column(name, sa.String(length=length), nullable=False, server_default="")
            )
        batch_op.add_column(sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("reveal_audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reports", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "reveal_audit_report",
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", "report_id"),
    )
    with op.batch_alter_table("reveal_audit_report", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reveal_audit_report_report_id"), ["report_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("reveal_audit_report")
    with op.batch_alter_table("reveal_audit", schema=None) as batch_op:
        batch_op.drop_column("reports")
    with op.batch_alter_table("sealed_person", schema=None) as batch_op:
        for name in (
            "arrived_at",
            "transport",
            "address",
            "origin_name",
            "phone_masked",
            "id_number_masked",
            "name_masked",
            "name_sealed",
        ):
            batch_op.drop_column(name)
