"""Alembic environment: runs a service's revisions on the connection `gridline.db` hands over.

Nothing here reads a URL or an ini file: `gridline.db.upgrade` passes the connection (with the
service's schema mapped on PostgreSQL), the service's metadata and its schema in the config's
attributes.
"""

from __future__ import annotations

from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.types import TypeDecorator

config = context.config


def render_item(kind: str, item: object, _context: AutogenContext) -> str | Literal[False]:
    """A column type that only converts values in Python (`gridline.db.UtcDateTime`) is written
    into a new revision as the SQLAlchemy type below it, which is all the schema knows of it."""
    if kind == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl_instance!r}"
    return False


context.configure(
    connection=config.attributes["connection"],
    target_metadata=config.attributes["metadata"],
    version_table_schema=config.attributes["schema"],
    # SQLite alters a table by copying it; batch mode does that for every ALTER.
    render_as_batch=True,
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
