"""Links that mean one person, check-in codes nobody can guess.

`task.handed_over_at` voids the task-page links issued before the task went to another holder;
`task.link` goes (every notice carries a link of its own now, and a bearer link is no longer kept
at rest); `task.check_in_code` is a random code per measure, given here to the tasks already
under one (their residents need the new code from the cadre's page: the old one was the task
id's first characters); `check_in_code_miss` counts a sender's wrong codes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# As `services.escalation.check_ins` made codes when this revision was written (frozen here).
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_LENGTH = 8


def _codes_for_tasks_under_a_measure() -> None:
    task = sa.table(
        "task",
        sa.column("task_id", sa.String()),
        sa.column("state", sa.String()),
        sa.column("check_in_code", sa.String()),
    )
    conn = op.get_bind()
    under = conn.execute(sa.select(task.c.task_id).where(task.c.state == "under_control"))
    given: set[str] = set()
    for (task_id,) in under.all():
        code = ""
        while not code or code in given:
            code = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        given.add(code)
        conn.execute(sa.update(task).where(task.c.task_id == task_id).values(check_in_code=code))


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("check_in_code", AutoString(length=8), nullable=True))
        batch_op.drop_column("link")
    _codes_for_tasks_under_a_measure()
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_check_in_code"), ["check_in_code"], unique=True)

    op.create_table(
        "check_in_code_miss",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_key", AutoString(length=64), nullable=False),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("check_in_code_miss", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_check_in_code_miss_sender_key"), ["sender_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("check_in_code_miss", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_in_code_miss_sender_key"))
    op.drop_table("check_in_code_miss")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_check_in_code"))
        batch_op.drop_column("check_in_code")
        batch_op.drop_column("handed_over_at")
        # The links went with the upgrade: the previous release sees none (and sends its own).
        batch_op.add_column(
            sa.Column(
                "link",
                AutoString(length=300),
                nullable=False,
                server_default="",
            )
        )
