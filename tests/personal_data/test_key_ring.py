"""Sealed values carry their key id: the PII key rotates, and values of the first format (no key
id) still unseal."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from gridline.personal import (
    Sealer,
    UnknownKeyId,
    derived_key_id,
    parse_key_ring,
    sealed_key_id,
)
from gridline.settings import Settings

K1 = base64.urlsafe_b64encode(bytes(range(32))).decode()
K2 = base64.urlsafe_b64encode(bytes(range(32, 64))).decode()
K3 = base64.urlsafe_b64encode(bytes(range(64, 96))).decode()
ID_NUMBER = "620102199003071234"


def first_format(key_b64: str, plaintext: str, context: str) -> bytes:
    """A value as the Sealer of the first release sealed it: nonce and ciphertext, no key id."""
    nonce = os.urandom(12)
    aead = AESGCM(base64.urlsafe_b64decode(key_b64))
    return nonce + aead.encrypt(nonce, plaintext.encode(), context.encode())


def test_a_rotated_ring_unseals_old_and_new_and_seals_with_the_new_key() -> None:
    before = Sealer([("2025a", K1)])
    old = before.seal(ID_NUMBER, "id_number")
    assert sealed_key_id(old) == "2025a"
    assert ID_NUMBER.encode() not in old

    rotated = Sealer([("2026a", K2), ("2025a", K1)])
    new = rotated.seal(ID_NUMBER, "id_number")
    assert sealed_key_id(new) == "2026a"
    assert rotated.key_id == "2026a" and rotated.key_ids == ["2026a", "2025a"]
    assert rotated.unseal(old, "id_number") == ID_NUMBER
    assert rotated.unseal(new, "id_number") == ID_NUMBER
    # The old ring cannot read what the new key sealed, and says which key it lacks.
    with pytest.raises(UnknownKeyId, match="2026a") as lacking:
        before.unseal(new, "id_number")
    assert lacking.value.key_id == "2026a"
    assert "GRIDLINE_PII_KEYS" in str(lacking.value)


def test_a_value_of_a_key_dropped_from_the_ring_fails_clearly() -> None:
    old = Sealer([("2025a", K1)]).seal("13812345678", "phone")
    with pytest.raises(UnknownKeyId, match="密钥“2025a”不在密钥环中"):
        Sealer([("2026a", K2)]).unseal(old, "phone")


def test_values_sealed_before_key_ids_still_unseal_with_the_key_that_sealed_them() -> None:
    legacy = first_format(K1, ID_NUMBER, "id_number")
    assert sealed_key_id(legacy) == ""
    assert Sealer(K1).unseal(legacy, "id_number") == ID_NUMBER
    # After a rotation the old key, now second in the ring, still opens them.
    assert Sealer([("2026a", K2), ("old", K1)]).unseal(legacy, "id_number") == ID_NUMBER
    with pytest.raises(InvalidTag):
        Sealer([("2026a", K2)]).unseal(legacy, "id_number")
    with pytest.raises(InvalidTag):
        Sealer(K1).unseal(legacy, "phone")


def test_a_swapped_key_id_or_field_does_not_open() -> None:
    ring = Sealer([("aaaa", K1), ("bbbb", K2)])
    sealed = ring.seal("13812345678", "phone")
    swapped = sealed.replace(b"aaaa", b"bbbb", 1)
    with pytest.raises(InvalidTag):
        ring.unseal(swapped, "phone")
    with pytest.raises(InvalidTag):
        ring.unseal(sealed, "id_number")


def test_one_key_seals_under_its_derived_id() -> None:
    sealer = Sealer(K1)
    assert sealer.key_id == derived_key_id(K1)
    assert derived_key_id(K1) != derived_key_id(K2)
    assert sealed_key_id(sealer.seal("x", "phone")) == derived_key_id(K1)
    # The same key in a ring under that id opens what it sealed.
    assert (
        Sealer([("new", K2), (derived_key_id(K1), K1)]).unseal(sealer.seal("x", "phone"), "phone")
        == "x"
    )


def test_the_ring_setting_names_keys_and_pii_key_joins_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINE_PII_KEY", K1)
    monkeypatch.setenv("GRIDLINE_PII_KEYS", f"2026a:{K2}, {K3}")
    ring = Settings().pii_key_ring
    assert ring == [("2026a", K2), (derived_key_id(K3), K3), (derived_key_id(K1), K1)]
    # What GRIDLINE_PII_KEY sealed alone unseals after the ring was set; new seals use 2026a.
    before = Sealer.from_settings(Settings(pii_keys=""))
    old = before.seal(ID_NUMBER, "id_number")
    after = Sealer.from_settings(Settings())
    assert after.unseal(old, "id_number") == ID_NUMBER
    assert sealed_key_id(after.seal(ID_NUMBER, "id_number")) == "2026a"


def test_the_development_key_stays_out_of_a_ring() -> None:
    development = Settings().pii_key.get_secret_value()
    assert Settings().pii_key_ring == [(derived_key_id(development), development)]
    assert [kid for kid, _ in Settings(pii_keys=f"2026a:{K2}").pii_key_ring] == ["2026a"]


@pytest.mark.parametrize(
    ("ring", "complaint"),
    [
        (f"2026a:{K1},2026a:{K2}", "重复"),
        ("2026a:c2hvcnQ=", "32字节"),
        (f"bad id!:{K1}", "密钥编号"),
    ],
)
def test_a_malformed_ring_stops_the_start(ring: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_key_ring(ring)
    with pytest.raises(ValidationError, match=complaint):
        Settings(pii_keys=ring)
