"""The outbox and its replay epochs; the ledger indexed by time for its retention.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from gridline.migrations import runtime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    runtime.add_outbox(ledger=True)


def downgrade() -> None:
    runtime.drop_outbox(ledger=True)
