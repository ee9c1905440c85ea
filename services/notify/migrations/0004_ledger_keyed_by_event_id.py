"""The consumer ledger keyed by event id first, so that a batch's lookup probes its ids on any
plan (`gridline.migrations.runtime.lead_ledger_key_with_event_id`).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from gridline.migrations import runtime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    runtime.lead_ledger_key_with_event_id()


def downgrade() -> None:
    runtime.lead_ledger_key_with_consumer()
