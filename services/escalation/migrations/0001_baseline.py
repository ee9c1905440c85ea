"""The schema of the release before migrations (its tables as `create_all` made them).

Revision ID: 0001
Revises:
Create Date: 2026-12-04 14:21:48.880760
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
        "check_in",
        sa.Column("check_in_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("symptoms", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("abnormal", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("check_in_id"),
    )
    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_in_task_id"), ["task_id"], unique=False)

    op.create_table(
        "check_in_slot",
        sa.Column("slot_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received", sa.Boolean(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("slot_id"),
    )
    with op.batch_alter_table("check_in_slot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_in_slot_next_at"), ["next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_in_slot_task_id"), ["task_id"], unique=False)

    op.create_table(
        "escalation",
        sa.Column("escalation_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("escalation_id"),
    )
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escalation_task_id"), ["task_id"], unique=False)

    runtime.create_ledger()
    op.create_table(
        "task",
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("report_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("grid_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("triage", sa.Boolean(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("assignee_group_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("assignee_level", sa.Integer(), nullable=False),
        sa.Column("origin_risk", sa.Integer(), nullable=False),
        sa.Column("measure", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("measure_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("measure_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("summary", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("link", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("report_accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("task_id"),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_deadline_at"), ["deadline_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_report_id"), ["report_id"], unique=False)

    op.create_table(
        "task_change",
        sa.Column("change_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("from_state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("to_state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("change_id"),
    )
    with op.batch_alter_table("task_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_change_task_id"), ["task_id"], unique=False)

    op.create_table(
        "zero_report",
        sa.Column("report_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("grid_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("arrivals", sa.Integer(), nullable=False),
        sa.Column("under_control", sa.Integer(), nullable=False),
        sa.Column("abnormal", sa.Integer(), nullable=False),
        sa.Column("households_visited", sa.Integer(), nullable=False),
        sa.Column("found_by_cadres", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("report_id"),
    )
    with op.batch_alter_table("zero_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_zero_report_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_zero_report_grid_id"), ["grid_id"], unique=False)

    op.create_table(
        "zero_report_run",
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("day"),
    )
    with op.batch_alter_table("zero_report_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_zero_report_run_next_at"), ["next_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("zero_report_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_zero_report_run_next_at"))

    op.drop_table("zero_report_run")
    with op.batch_alter_table("zero_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_zero_report_grid_id"))
        batch_op.drop_index(batch_op.f("ix_zero_report_day"))

    op.drop_table("zero_report")
    with op.batch_alter_table("task_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_change_task_id"))

    op.drop_table("task_change")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_report_id"))
        batch_op.drop_index(batch_op.f("ix_task_deadline_at"))

    op.drop_table("task")
    runtime.drop_ledger()
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_task_id"))

    op.drop_table("escalation")
    with op.batch_alter_table("check_in_slot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_in_slot_task_id"))
        batch_op.drop_index(batch_op.f("ix_check_in_slot_next_at"))

    op.drop_table("check_in_slot")
    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_in_task_id"))

    op.drop_table("check_in")
