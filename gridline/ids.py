"""Identifiers: fresh ones for new things, derived ones so that a replay yields the same id."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f1c7f52-52a4-4c1e-9a43-6b1f0e6c9d21")


def new_id() -> str:
    """A fresh random id."""
    return uuid.uuid4().hex


def derived_id(*parts: str) -> str:
    """The same id every time for the same parts (UUIDv5)."""
    return uuid.uuid5(_NAMESPACE, "/".join(parts)).hex
