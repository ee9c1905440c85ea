"""Derived ids stay what they were: a replay after an upgrade must derive the same ids."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from gridline.ids import _NAMESPACE, derived_id


def test_ids_derived_before_stay_the_same() -> None:
    assert derived_id("task", "r-1") == "ed71800572ac5931b04d02c1b33f586d"
    assert derived_id("notice", "t", "assigned", "群-1") == "3978f4213a46542190926da7d35bec3a"


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_a_derived_id_is_the_uuid5_of_its_parts(parts: list[str]) -> None:
    assert derived_id(*parts) == uuid.uuid5(_NAMESPACE, "/".join(parts)).hex
