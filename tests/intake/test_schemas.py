"""Each source's record shape, normalisation, and rejections that name the field and the rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.problems import problems_from
from services.intake.schemas import CheckpointScan, parse_report
from tests.intake.samples import CHECKPOINT_SCAN, FEED_RECORD, VALID_REPORT

# The demo county's code (皋兰县, Gansu), the default of `intake_county_region_code`.
GAOLAN = "620122"


def refusals(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, rule) of every refusal of a record."""
    with pytest.raises(ValidationError) as caught:
        parse_report(record)
    return [(p.field, p.rule) for p in problems_from(caught.value.errors(), "records[7]")]


def test_full_width_and_padded_input_is_normalised() -> None:
    report = parse_report(
        {
            **VALID_REPORT,
            "phone": "１３８ １２３４ ５６７８",
            "id_number": " 11010519491231002x ",
            "name": " 张伟\u3000",
            "origin_region_code": "３１０１１５",
            "origin_name": None,
        }
    )
    assert report.phone == "13812345678"
    assert report.id_number == "11010519491231002X"
    assert report.name == "张伟"
    assert (report.origin_region_code, report.origin_name) == ("310115", "上海市浦东新区")


def test_origin_by_traditional_place_name_alone() -> None:
    report = parse_report(
        {**VALID_REPORT, "origin_region_code": None, "origin_name": "上海市浦東新區"}
    )
    assert (report.origin_region_code, report.origin_name) == ("310115", "上海市浦东新区")


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"phone": "23812345678"}, ("records[7].phone", "phone.mainland_mobile")),
        ({"origin_risk": "extreme"}, ("records[7].origin_risk", "literal_error")),
        ({"arrived_at": "2022-01-28T18:40:00"}, ("records[7].arrived_at", "timezone_aware")),
        ({"id_number": "110105194912310021"}, ("records[7].id_number", "id_number.check_digit")),
        (
            {"document_type": "passport", "id_number": "11-22"},
            ("records[7].id_number", "passport.format"),
        ),
        (
            {"origin_region_code": "990000"},
            ("records[7].origin_region_code", "origin.unknown_code"),
        ),
        (
            {"origin_name": "兰州市城关区"},
            ("records[7].origin_name", "origin.mismatch"),
        ),
        (
            {"origin_region_code": None, "origin_name": None},
            ("records[7].origin_name", "origin.missing"),
        ),
        ({"nationality": "CN"}, ("records[7].nationality", "extra_forbidden")),
        ({"source": "rumour"}, ("records[7].source", "union_tag_invalid")),
        ({"address": "x"}, ("records[7].address", "string_too_short")),
    ],
)
def test_each_refusal_names_the_field_and_the_rule(
    changes: dict[str, Any], refused: tuple[str, str]
) -> None:
    assert refusals({**VALID_REPORT, **changes}) == [refused]


def test_a_missing_source_is_named() -> None:
    record = {k: v for k, v in VALID_REPORT.items() if k != "source"}
    assert refusals(record) == [("records[7].source", "union_tag_not_found")]


def test_arrival_in_the_future_is_refused_beyond_tolerance() -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert parse_report({**VALID_REPORT, "arrived_at": soon})
    assert refusals({**VALID_REPORT, "arrived_at": later}) == [
        ("records[7].arrived_at", "arrived_at.future")
    ]


def test_feed_records_need_their_record_id() -> None:
    assert parse_report(FEED_RECORD).source_record_id == "lzbb-20220128-000123"
    record = {k: v for k, v in FEED_RECORD.items() if k != "source_record_id"}
    assert refusals(record) == [("records[7].source_record_id", "missing")]


def test_cadre_visits_name_the_cadre() -> None:
    record = {**VALID_REPORT, "source": "cadre_visit"}
    assert refusals(record) == [("records[7].cadre_id", "missing")]
    assert parse_report({**record, "cadre_id": "cadre-0231"}).risk(GAOLAN) == "medium"


@pytest.mark.parametrize(
    ("changes", "risk"),
    [
        # From Shanghai to a Gansu county: a green scan is a low-risk arrival to register.
        ({"health_code": "green"}, "low"),
        ({"health_code": "green", "origin_region_code": "620102", "origin_name": None}, None),
        ({"health_code": "yellow"}, "medium"),
        ({"health_code": "red"}, "high"),
        ({"health_code": "green", "itinerary_risk": "high"}, "high"),
        ({"health_code": "green", "test_result": "positive"}, "high"),
    ],
)
def test_checkpoint_scans_become_reports_by_what_they_found(
    changes: dict[str, Any], risk: str | None
) -> None:
    scan = parse_report({**CHECKPOINT_SCAN, **changes})
    assert isinstance(scan, CheckpointScan)
    assert scan.risk(GAOLAN) == risk
    assert scan.event_fields(GAOLAN)["origin_risk"] == risk


def test_checkpoint_scans_do_not_take_a_risk_level() -> None:
    refused = refusals({**CHECKPOINT_SCAN, "origin_risk": "low"})
    assert refused == [("records[7].origin_risk", "extra_forbidden")]
