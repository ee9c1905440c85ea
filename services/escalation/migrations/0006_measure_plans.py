"""Measures carried out: each task's plan, its timers, test results and outcomes.

`task.follow_up` keeps the plan assignment's policy set (days, test days, check-in times,
verification deadline, end); `task.verify_by`, `measure_started_at` and `measure_ends_at` are
where it stands. `measure_timer` holds the follow-up's timers (reminders, tests, the end notice,
the verification deadline, notices sent at once), `test_result` the tests recorded. Tasks stored
before have no plan: a measure started on one runs the usual days of its kind, and a measure
already running is given its start (when it was started, by its audit trail) and its end, so
that it cannot be ended early without a reason and an office's approval.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As `services.escalation.measures.DEFAULT_DAYS` was when this revision was written (frozen).
_DAYS = {"quarantine": 14, "monitoring": 7}
_UNDER_MEASURE = ("under_control", "end_requested")


def _dates_of_running_measures() -> None:
    task = sa.table(
        "task",
        sa.column("task_id", sa.String()),
        sa.column("state", sa.String()),
        sa.column("measure", sa.String()),
        sa.column("assigned_at", sa.DateTime(timezone=True)),
        sa.column("measure_started_at", sa.DateTime(timezone=True)),
        sa.column("measure_ends_at", sa.DateTime(timezone=True)),
    )
    change = sa.table(
        "task_change",
        sa.column("task_id", sa.String()),
        sa.column("action", sa.String()),
        sa.column("changed_at", sa.DateTime(timezone=True)),
    )
    started = (
        sa.select(sa.func.max(change.c.changed_at))
        .where(change.c.task_id == task.c.task_id, change.c.action == "start_measure")
        .scalar_subquery()
    )
    conn = op.get_bind()
    running = conn.execute(
        sa.select(task.c.task_id, task.c.measure, task.c.assigned_at, started).where(
            task.c.state.in_(_UNDER_MEASURE), task.c.measure.in_(list(_DAYS))
        )
    )
    for task_id, measure, assigned_at, started_at in running.all():
        start = started_at or assigned_at
        if start.tzinfo is None:  # SQLite hands back naive UTC
            start = start.replace(tzinfo=UTC)
        conn.execute(
            sa.update(task)
            .where(task.c.task_id == task_id)
            .values(
                measure_started_at=start, measure_ends_at=start + timedelta(days=_DAYS[measure])
            )
        )


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follow_up", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("verify_by", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("measure_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("measure_ends_at", sa.DateTime(timezone=True), nullable=True))
    _dates_of_running_measures()

    op.create_table(
        "measure_timer",
        sa.Column("timer_id", AutoString(length=64), nullable=False),
        sa.Column("task_id", AutoString(length=64), nullable=False),
        sa.Column("kind", AutoString(length=20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("test_day", sa.Integer(), nullable=False),
        sa.Column("note", AutoString(length=500), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("timer_id"),
    )
    with op.batch_alter_table("measure_timer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measure_timer_next_at"), ["next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_measure_timer_task_id"), ["task_id"], unique=False)

    op.create_table(
        "test_result",
        sa.Column("result_id", AutoString(length=64), nullable=False),
        sa.Column("task_id", AutoString(length=64), nullable=False),
        sa.Column("test_day", sa.Integer(), nullable=False),
        sa.Column("result", AutoString(length=20), nullable=False),
        sa.Column("actor", AutoString(length=100), nullable=False),
        sa.Column("channel", AutoString(length=20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("result_id"),
    )
    with op.batch_alter_table("test_result", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_test_result_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("test_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_result_task_id"))
    op.drop_table("test_result")
    with op.batch_alter_table("measure_timer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measure_timer_task_id"))
        batch_op.drop_index(batch_op.f("ix_measure_timer_next_at"))
    op.drop_table("measure_timer")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("measure_ends_at")
        batch_op.drop_column("measure_started_at")
        batch_op.drop_column("verify_by")
        batch_op.drop_column("follow_up")
