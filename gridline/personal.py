"""Personal data: the keyed person key, sealed copies and the masked forms people see."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


def person_key(secret: str, id_number: str) -> str:
    """A stable keyed hash of a normalised ID number: dedup and partition key, never reversible."""
    return hmac.new(secret.encode(), id_number.upper().encode(), hashlib.sha256).hexdigest()


class Sealer:
    """Encrypts personal fields with AES-256-GCM so only key holders can read them."""

    def __init__(self, key_b64: str) -> None:
        key = base64.urlsafe_b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("the PII key must be 32 bytes (urlsafe base64)")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> bytes:
        """Nonce followed by the ciphertext; `context` binds it to its field."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def unseal(self, sealed: bytes, context: str) -> str:
        """The plaintext of a sealed value (raises if tampered or of another field)."""
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, context.encode()).decode()


def mask_id_number(id_number: str) -> str:
    """`**************1234`: the last four characters of an ID number, nothing else.

    A shorter document number (passport, permit: `*******78`) shows its last two, so that a
    mask never shows more than four characters of any number.
    """
    shown = 4 if len(id_number) >= 15 else 2 if len(id_number) >= 6 else 0
    return "*" * (len(id_number) - shown) + id_number[len(id_number) - shown :]


def mask_phone(phone: str) -> str:
    """`138****5678`."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str) -> str:
    """`张*` / `欧阳**`: the family name only."""
    if len(name) <= 1:
        return name
    family = 2 if len(name) >= 4 else 1
    return name[:family] + "*" * (len(name) - family)
