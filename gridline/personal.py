"""Personal data: the keyed person key, sealed copies and the masked forms people see.

Sealed values carry the id of the key that sealed them, so the key can be rotated: a key ring
(`GRIDLINE_PII_KEYS`, `kid:key,kid2:key2`) seals with its first key and unseals with any of
them. A value sealed before key ids existed (nonce and ciphertext, nothing else) still unseals
with whichever key of the ring sealed it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from gridline.settings import Settings

_NONCE_BYTES = 12
# A value sealed with a key id starts with this marker, then one byte giving the id's length and
# the id. A value of the first format starts with its random nonce: one in 2^32 of those starts
# with the marker too, which is why such a value that does not open is tried in the old format.
_MARKER = b"GLk1"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")


class UnknownKeyId(ValueError):
    """A sealed value names a key id the ring does not hold (a key dropped too early)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"封存数据所用的密钥“{key_id}”不在密钥环中：把该密钥加回 GRIDLINE_PII_KEYS 才能解封"
        )
        self.key_id = key_id


def person_key(secret: str, id_number: str) -> str:
    """A stable keyed hash of a normalised ID number: dedup and partition key, never reversible."""
    return hmac.new(secret.encode(), id_number.upper().encode(), hashlib.sha256).hexdigest()


def derived_key_id(key_b64: str) -> str:
    """The key id of a key given without one (`GRIDLINE_PII_KEY`, a bare ring entry): a short
    hash of the key, the same wherever the key is, that reveals nothing usable about it."""
    digest = hashlib.sha256(b"gridline pii key id\0" + _key_bytes(key_b64)).hexdigest()
    return "k" + digest[:10]


def parse_key_ring(spec: str) -> list[tuple[str, str]]:
    """The (key id, key) pairs of a ring written `kid:key,kid2:key2`, the sealing key first.

    An entry without `kid:` gets its derived key id (urlsafe base64 has no colon). Raises
    ValueError naming the entry that is wrong: a bad id, a key that is not 32 bytes, an id twice.
    """
    ring: list[tuple[str, str]] = []
    for number, entry in enumerate((e.strip() for e in spec.split(",")), start=1):
        if not entry:
            continue
        key_id, separator, key = entry.rpartition(":")
        try:
            _key_bytes(key)
        except ValueError:
            raise ValueError(
                f"GRIDLINE_PII_KEYS 第{number}项：密钥须为32字节（urlsafe base64）"
            ) from None
        if not separator:
            key_id = derived_key_id(key)
        elif not _KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"GRIDLINE_PII_KEYS 第{number}项：密钥编号须为1到32个字母、数字或 . _ -"
            )
        if key_id in (kid for kid, _ in ring):
            raise ValueError(f"GRIDLINE_PII_KEYS 第{number}项：密钥编号“{key_id}”重复")
        ring.append((key_id, key))
    return ring


def _key_bytes(key_b64: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(key_b64)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValueError("the PII key must be 32 bytes (urlsafe base64)")
    return key


def sealed_key_id(sealed: bytes) -> str:
    """The id of the key a value was sealed with; empty for a value of the first format."""
    header = _header(sealed)
    return header[0] if header else ""


def _header(sealed: bytes) -> tuple[str, int] | None:
    """The key id of a value sealed with one and where its nonce starts, if it has one."""
    if not sealed.startswith(_MARKER) or len(sealed) <= len(_MARKER):
        return None
    length = sealed[len(_MARKER)]
    start = len(_MARKER) + 1
    try:
        key_id = sealed[start : start + length].decode("ascii")
    except UnicodeDecodeError:
        return None
    if not _KEY_ID.fullmatch(key_id):
        return None
    return key_id, start + length


class Sealer:
    """Encrypts personal fields with AES-256-GCM so only key holders can read them.

    Given one key (urlsafe base64 of 32 bytes), it seals and unseals with it under the key's
    derived id; given a ring of (key id, key) pairs, the first seals and every one unseals.
    """

    def __init__(self, keys: str | Sequence[tuple[str, str]]) -> None:
        ring = [(derived_key_id(keys), keys)] if isinstance(keys, str) else list(keys)
        if not ring:
            raise ValueError("GRIDLINE_PII_KEYS 没有任何密钥")
        self._keys: dict[str, AESGCM] = {}
        for key_id, key in ring:
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError(
                    f"GRIDLINE_PII_KEYS：密钥编号“{key_id}”须为1到32个字母、数字或 . _ -"
                )
            if key_id in self._keys:
                raise ValueError(f"GRIDLINE_PII_KEYS：密钥编号“{key_id}”重复")
            self._keys[key_id] = AESGCM(_key_bytes(key))
        self.key_id = ring[0][0]
        self._header = _MARKER + bytes([len(self.key_id)]) + self.key_id.encode("ascii")

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        """The ring a service seals and unseals with (`Settings.pii_key_ring`)."""
        return cls(settings.pii_key_ring)

    @property
    def key_ids(self) -> list[str]:
        """Every key id the sealer unseals, the sealing one first."""
        return list(self._keys)

    def seal(self, plaintext: str, context: str) -> bytes:
        """Marker, key id, nonce, ciphertext; `context` binds it to its field, and the header
        is authenticated with it so that its key id cannot be swapped."""
        nonce = os.urandom(_NONCE_BYTES)
        aead = self._keys[self.key_id]
        aad = self._header + context.encode()
        return self._header + nonce + aead.encrypt(nonce, plaintext.encode(), aad)

    def unseal(self, sealed: bytes, context: str) -> str:
        """The plaintext of a sealed value.

        Raises UnknownKeyId when its key is not in the ring, InvalidTag when it was tampered
        with or belongs to another field.
        """
        header = _header(sealed)
        if header is None:
            return self._unseal_first_format(sealed, context)
        key_id, nonce_at = header
        try:
            aead = self._keys.get(key_id)
            if aead is None:
                raise UnknownKeyId(key_id)
            nonce = sealed[nonce_at : nonce_at + _NONCE_BYTES]
            body = sealed[nonce_at + _NONCE_BYTES :]
            return aead.decrypt(nonce, body, sealed[:nonce_at] + context.encode()).decode()
        except (UnknownKeyId, InvalidTag) as error:
            # One value of the first format in 2^32 starts with the marker by chance.
            try:
                return self._unseal_first_format(sealed, context)
            except InvalidTag:
                raise error from None

    def _unseal_first_format(self, sealed: bytes, context: str) -> str:
        """A value sealed before key ids: nonce and ciphertext, with whichever key sealed it."""
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        for aead in self._keys.values():
            try:
                return aead.decrypt(nonce, body, context.encode()).decode()
            except InvalidTag:
                continue
        raise InvalidTag


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
