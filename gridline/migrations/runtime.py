"""Schema steps of the runtime's own tables (ledger, outbox), which every service's revisions
take from here rather than each repeating them. Each function is frozen once a revision uses
it: a later change of these tables is a new function and a new revision."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString


def create_ledger() -> None:
    """The processed-events ledger as the first release had it."""
    op.create_table(
        "processed_event",
        sa.Column("consumer", AutoString(length=100), nullable=False),
        sa.Column("event_id", AutoString(length=100), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )


def drop_ledger() -> None:
    """Undo `create_ledger`."""
    op.drop_table("processed_event")


def add_outbox(*, ledger: bool) -> None:
    """The outbox and its replay epochs; with `ledger`, the ledger indexed by time."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", AutoString(length=200), nullable=False),
        sa.Column("event_id", AutoString(length=200), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])
    op.create_table(
        "outbox_replayed_epoch",
        sa.Column("epoch", AutoString(length=100), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("epoch"),
    )
    if ledger:
        op.create_index("ix_processed_event_processed_at", "processed_event", ["processed_at"])


def drop_outbox(*, ledger: bool) -> None:
    """Undo `add_outbox`."""
    if ledger:
        op.drop_index("ix_processed_event_processed_at", "processed_event")
    op.drop_table("outbox_replayed_epoch")
    op.drop_index("ix_outbox_published_at", "outbox")
    op.drop_index("ix_outbox_created_at", "outbox")
    op.drop_table("outbox")


def _ledger_key(first: str, second: str) -> None:
    """The ledger's primary key as (`first`, `second`), its rows kept."""
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a key: the table is copied under the new one.
        with op.batch_alter_table("processed_event", recreate="always") as batch_op:
            batch_op.create_primary_key("processed_event_pkey", [first, second])
        return
    op.drop_constraint("processed_event_pkey", "processed_event", type_="primary")
    op.create_primary_key("processed_event_pkey", "processed_event", [first, second])


def lead_ledger_key_with_event_id() -> None:
    """The ledger keyed (event_id, consumer): a batch's lookup of its event ids is one probe an
    id on any plan. Keyed (consumer, event_id), a table never analysed (a fresh database at the
    start of a surge) was read as a range of the consumer's rows, filtered: the whole table at
    every batch."""
    _ledger_key("event_id", "consumer")


def lead_ledger_key_with_consumer() -> None:
    """Undo `lead_ledger_key_with_event_id`."""
    _ledger_key("consumer", "event_id")
