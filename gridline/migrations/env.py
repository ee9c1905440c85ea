"""Alembic environment: runs a service's revisions on the connection `gridline.db` hands over.

Nothing here reads a URL or an ini file: `gridline.db.upgrade` passes the connection (with the
service's schema mapped on PostgreSQL), the service's metadata and its schema in the config's
attributes.
"""

from __future__ import annotations

from alembic import context

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=config.attributes["metadata"],
    version_table_schema=config.attributes["schema"],
    # SQLite alters a table by copying it; batch mode does that for every ALTER.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
