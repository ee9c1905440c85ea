"""Personal data: masks, sealing and the person key."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from gridline.personal import Sealer, mask_id_number, mask_name, mask_phone, person_key

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


def test_masks_show_only_what_people_need() -> None:
    assert mask_id_number("620102199003071234") == "**************1234"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张伟") == "张*"
    assert mask_name("李建国") == "李**"
    assert mask_name("欧阳娜娜") == "欧阳**"


def test_person_key_is_stable_keyed_and_case_blind() -> None:
    key = person_key("s1", "62010219900307123x")
    assert key == person_key("s1", "62010219900307123X")
    assert key != person_key("s2", "62010219900307123X")
    assert "62010219900307123" not in key


def test_sealed_values_open_only_for_their_field() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal("13812345678", "phone")
    assert b"13812345678" not in sealed
    assert sealer.unseal(sealed, "phone") == "13812345678"
    with pytest.raises(InvalidTag):
        sealer.unseal(sealed, "id_number")


def test_sealer_refuses_a_short_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(base64.urlsafe_b64encode(b"short").decode())
