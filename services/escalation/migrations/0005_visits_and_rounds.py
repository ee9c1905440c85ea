"""Household visits and visit rounds; the visit rate and cadre-found share computed, not typed.

`household_visit` is the visit log (who, when, which household, what was found) and
`visit_round` a round over a grid or community whose row is the timer of its deadline.
`task.report_source` keeps where a task's report came from, which the daily summary's share of
arrivals found by cadres counts. The summary computes the visit rate and the cadre-found share
from the visits and the report sources; the counts earlier reports typed
(`households_visited`, `found_by_cadres`) are kept as they were typed, and new reports leave
them empty.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _place_indexes(table: str, columns: list[str]) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "household_visit",
        sa.Column("visit_id", AutoString(length=64), nullable=False),
        sa.Column("household_id", AutoString(length=64), nullable=False),
        sa.Column("grid_id", AutoString(length=64), nullable=False),
        sa.Column("community_id", AutoString(length=64), nullable=False),
        sa.Column("township_id", AutoString(length=64), nullable=False),
        sa.Column("outcome", AutoString(length=20), nullable=False),
        sa.Column("note", AutoString(length=500), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visitor", AutoString(length=100), nullable=False),
        sa.Column("visitor_subject", AutoString(length=100), nullable=False),
        sa.Column("channel", AutoString(length=20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("visit_id"),
    )
    _place_indexes(
        "household_visit",
        ["community_id", "grid_id", "household_id", "township_id", "visited_at"],
    )
    op.create_table(
        "visit_round",
        sa.Column("round_id", AutoString(length=64), nullable=False),
        sa.Column("name", AutoString(length=100), nullable=False),
        sa.Column("node_id", AutoString(length=64), nullable=False),
        sa.Column("node_level", AutoString(length=20), nullable=False),
        sa.Column("grid_id", AutoString(length=64), nullable=False),
        sa.Column("community_id", AutoString(length=64), nullable=False),
        sa.Column("township_id", AutoString(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", AutoString(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("households", sa.Integer(), nullable=True),
        sa.Column("visited", sa.Integer(), nullable=True),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("round_id"),
    )
    _place_indexes("visit_round", ["community_id", "grid_id", "next_at", "township_id"])
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("report_source", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("zero_report", schema=None) as batch_op:
        batch_op.alter_column("households_visited", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("found_by_cadres", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # Reports made since were not typed: the previous release reads them as zero.
    for column in ("households_visited", "found_by_cadres"):
        op.execute(f"UPDATE zero_report SET {column} = 0 WHERE {column} IS NULL")
    with op.batch_alter_table("zero_report", schema=None) as batch_op:
        batch_op.alter_column("households_visited", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("found_by_cadres", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("report_source")
    op.drop_table("visit_round")
    op.drop_table("household_visit")
