"""Intake's rules without HTTP or Kafka: documents, phones, origins, checkpoint scans."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.domain import (
    RuleViolation,
    check_document,
    check_resident_id,
    checkpoint_risk,
    from_another_province,
    id_check_char,
    id_number_problem,
    parse_mobile,
    resolve_origin,
)
from services.intake.regions import region_table

PROVINCES = ["11", "31", "44", "50", "62", "81", "82", "83"]


def test_check_digit_follows_gb_11643() -> None:
    assert id_check_char("11010519491231002") == "X"
    assert id_number_problem("11010519491231002X") is None
    assert check_resident_id("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "rule", "problem"),
    [
        ("1101051949123100", "id_number.length", "must have 18 characters"),
        ("11010519491231002Y", "id_number.format", "17 digits followed by a digit or X"),
        ("1101051949１231002X", "id_number.format", "17 digits followed by a digit or X"),
        ("990105194912310020", "id_number.region", "names no known province"),
        ("110105194902300021", "id_number.birth_date", "not a real date"),
        ("110105209901010012", "id_number.birth_date", "not plausible"),
        ("110105189901010012", "id_number.birth_date", "not plausible"),
        ("110105194912310021", "id_number.check_digit", "check digit does not match"),
    ],
)
def test_bad_id_numbers_name_the_rule(value: str, rule: str, problem: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_resident_id(value, today=date(2022, 1, 28))
    assert caught.value.rule == rule
    assert problem in caught.value.message


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    """Valid resident ID numbers over the known provinces."""
    province = draw(st.sampled_from(PROVINCES))
    rest = draw(st.integers(0, 9999))
    born = draw(st.dates(date(1900, 1, 1), date(2021, 12, 31)))
    serial = draw(st.integers(0, 999))
    first17 = f"{province}{rest:04d}{born:%Y%m%d}{serial:03d}"
    return first17 + id_check_char(first17)


@given(resident_ids())
def test_every_valid_id_number_passes_in_either_case(value: str) -> None:
    assert check_resident_id(value) == value
    assert check_resident_id(value.lower()) == value


@given(resident_ids(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_every_single_character_change_is_refused(value: str, position: int, char: str) -> None:
    changed = value[:position] + char + value[position + 1 :]
    if changed == value or (position < 17 and char == "X"):
        return
    with pytest.raises(RuleViolation):
        check_resident_id(changed)


@given(st.text(max_size=24))
def test_id_parser_never_fails_otherwise(value: str) -> None:
    try:
        result = check_resident_id(value)
    except RuleViolation:
        return
    assert re.fullmatch(r"\d{17}[\dX]", result)


@pytest.mark.parametrize(
    ("document_type", "value", "normalised"),
    [
        ("passport", "e12345678", "E12345678"),
        ("passport", "EA1234567", "EA1234567"),
        ("hk_macau_permit", "H12345678", "H12345678"),
        ("hk_macau_permit", "M1234567890", "M1234567890"),
        ("taiwan_permit", "12345678", "12345678"),
        ("taiwan_permit", "1234567890", "1234567890"),
    ],
)
def test_other_documents_by_their_own_rules(
    document_type: str, value: str, normalised: str
) -> None:
    assert check_document(document_type, value) == normalised


@pytest.mark.parametrize(
    ("document_type", "value"),
    [
        ("passport", "ABCDEFGH"),
        ("passport", "E123"),
        ("passport", "E123456789X"),
        ("hk_macau_permit", "K12345678"),
        ("hk_macau_permit", "H1234567"),
        ("taiwan_permit", "1234567"),
        ("taiwan_permit", "T12345678"),
    ],
)
def test_bad_other_documents_name_their_rule(document_type: str, value: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_document(document_type, value)
    assert caught.value.rule == f"{document_type}.format"


@pytest.mark.parametrize(
    "written",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "0086-13812345678",
        "8613812345678",
        "(138)1234.5678",
        "１３８１２３４５６７８",
    ],
)
def test_mobile_numbers_as_people_write_them(written: str) -> None:
    assert parse_mobile(written) == "13812345678"


@pytest.mark.parametrize(
    "written", ["23812345678", "1381234567", "138123456789", "12812345678", "+1 138 1234 5678", ""]
)
def test_bad_mobile_numbers_are_refused(written: str) -> None:
    with pytest.raises(RuleViolation, match="mainland mobile") as caught:
        parse_mobile(written)
    assert caught.value.rule == "phone.mainland_mobile"


@st.composite
def written_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """A valid mobile number, and the same number as someone might type it."""
    number = f"1{draw(st.sampled_from('3456789'))}{draw(st.integers(0, 10**9 - 1)):09d}"
    prefix = draw(st.sampled_from(["", "+86", "0086", "86", "+86 "]))
    separators = draw(st.lists(st.sampled_from(["", " ", "-", "."]), min_size=11, max_size=11))
    written = prefix + "".join(d + s for d, s in zip(number, separators, strict=True))
    return number, written


@given(written_mobiles())
def test_every_written_mobile_parses_back(pair: tuple[str, str]) -> None:
    number, written = pair
    assert parse_mobile(written) == number


@given(st.text(max_size=20))
def test_phone_parser_yields_a_mobile_or_a_rule(value: str) -> None:
    try:
        result = parse_mobile(value)
    except RuleViolation:
        return
    assert re.fullmatch(r"1[3-9]\d{9}", result)


@pytest.mark.parametrize(
    ("code", "name", "resolved"),
    [
        ("310115", None, ("310115", "上海市浦东新区")),
        (None, "上海市浦东新区", ("310115", "上海市浦东新区")),
        (None, "上海市浦東新區", ("310115", "上海市浦东新区")),
        (None, "浦东新区", ("310115", "上海市浦东新区")),
        (None, "兰州市城关区", ("620102", "甘肃省兰州市城关区")),
        ("310115", "上海市浦東新區", ("310115", "上海市浦东新区")),
        ("310199", None, ("310199", "上海市")),
        ("310199", "上海市某新区", ("310199", "上海市某新区")),
        ("310115", "上海市", ("310115", "上海市浦东新区")),
    ],
)
def test_origin_by_code_or_place_name(
    code: str | None, name: str | None, resolved: tuple[str, str]
) -> None:
    assert resolve_origin(code, name) == resolved


@pytest.mark.parametrize(
    ("code", "name", "rule"),
    [
        (None, None, "origin.missing"),
        ("31011", None, "origin.code_format"),
        ("990101", None, "origin.unknown_code"),
        (None, "火星市", "origin.unknown_name"),
        ("310115", "兰州市城关区", "origin.mismatch"),
    ],
)
def test_bad_origins_name_the_rule(code: str | None, name: str | None, rule: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        resolve_origin(code, name)
    assert caught.value.rule == rule


def test_ambiguous_place_names_list_the_candidates() -> None:
    with pytest.raises(RuleViolation, match="540102 西藏自治区拉萨市城关区") as caught:
        resolve_origin(None, "城关区")
    assert caught.value.rule == "origin.ambiguous_name"
    assert "620102 甘肃省兰州市城关区" in caught.value.message


def test_region_table_names_every_province() -> None:
    table = region_table()
    for prefix in ("11", "31", "62", "65", "71", "81", "82"):
        province = table.province(prefix + "0000")
        assert province is not None and province.code == prefix + "0000"


@pytest.mark.parametrize(
    ("health_code", "itinerary", "from_elsewhere", "risk"),
    [
        ("green", "none", False, None),
        ("green", "low", False, None),
        ("green", "none", True, "low"),
        ("green", "low", True, "low"),
        ("yellow", "none", False, "medium"),
        ("red", "none", True, "high"),
        ("green", "medium", False, "medium"),
        ("green", "high", True, "high"),
        ("yellow", "high", False, "high"),
    ],
)
def test_scan_one_check_three(
    health_code: str, itinerary: str, from_elsewhere: bool, risk: str | None
) -> None:
    assert checkpoint_risk(health_code, itinerary, from_elsewhere=from_elsewhere) == risk


@pytest.mark.parametrize(
    ("origin", "elsewhere"),
    [("310115", True), ("620102", False), ("621102", False), (None, False), ("", False)],
)
def test_another_province_is_told_by_the_first_two_digits(
    origin: str | None, elsewhere: bool
) -> None:
    assert from_another_province(origin, "620122") is elsewhere
