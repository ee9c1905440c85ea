"""The schema of the release before migrations (its tables as `create_all` made them).

Revision ID: 0001
Revises:
Create Date: 2026-12-04 14:21:44.878700
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
        "directory_group",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("robot_webhook", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("robot_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "directory_micro_grid",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("leader_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "directory_node",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("parent_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("responsible_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("aliases", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("micro_grid_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("directory_node", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_directory_node_kind"), ["kind"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_directory_node_parent_id"), ["parent_id"], unique=False
        )

    op.create_table(
        "directory_person",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("chat_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("on_leave", sa.Boolean(), nullable=False),
        sa.Column("backup_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "placement",
        sa.Column("report_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("merged_into", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("grid_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("triage", sa.Boolean(), nullable=False),
        sa.Column("assignee_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("holder_group_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("holder_level", sa.Integer(), nullable=False),
        sa.Column("risk", sa.Integer(), nullable=False),
        sa.Column("measure_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("report_id"),
    )
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_placement_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_placement_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_placement_task_id"), ["task_id"], unique=False)

    runtime.create_ledger()
    op.create_table(
        "risk_area_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_code", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("risk_area_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_risk_area_change_region_code"), ["region_code"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("risk_area_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_area_change_region_code"))

    op.drop_table("risk_area_change")
    runtime.drop_ledger()
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_task_id"))
        batch_op.drop_index(batch_op.f("ix_placement_case_id"))
        batch_op.drop_index(batch_op.f("ix_placement_assignee_id"))

    op.drop_table("placement")
    op.drop_table("directory_person")
    with op.batch_alter_table("directory_node", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_node_parent_id"))
        batch_op.drop_index(batch_op.f("ix_directory_node_kind"))

    op.drop_table("directory_node")
    op.drop_table("directory_micro_grid")
    op.drop_table("directory_group")
