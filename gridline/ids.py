"""Identifiers: fresh ones for new things, derived ones so that a replay yields the same id."""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.UUID("6f1c7f52-52a4-4c1e-9a43-6b1f0e6c9d21")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def new_id() -> str:
    """A fresh random id."""
    return uuid.uuid4().hex


def derived_id(*parts: str) -> str:
    """The same id every time for the same parts: `uuid.uuid5(namespace, "a/b").hex`.

    Computed as RFC 9562 defines UUIDv5 (SHA-1 of namespace and name, version and variant bits
    set) without building a `UUID`, which costs several times the hash; every record of the
    pipeline derives a few.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "/".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC's variant
    return digest.hex()
