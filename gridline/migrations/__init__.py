"""Alembic's environment, shared by every service; each service keeps its own revisions."""
