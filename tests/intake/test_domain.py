"""Intake's rules without HTTP or Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.intake.domain import id_check_char, id_number_problem
from services.intake.schemas import ReportIn
from tests.intake.samples import VALID_REPORT as VALID


def test_check_digit_follows_gb_11643() -> None:
    assert id_check_char("11010519491231002") == "X"
    assert id_number_problem("11010519491231002X") is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1101051949123100", "must have 18 characters"),
        ("11010519491231002Y", "17 digits followed by a digit or X"),
        ("110105194902300021", "not a real date"),
        ("110105194912310021", "check digit does not match"),
    ],
)
def test_bad_id_numbers_name_the_rule(value: str, problem: str) -> None:
    assert problem in (id_number_problem(value) or "")


def test_full_width_input_is_normalised() -> None:
    report = ReportIn.model_validate(
        {**VALID, "phone": "１３８１２３４５６７８", "id_number": " 11010519491231002x "}
    )
    assert report.phone == "13812345678"
    assert report.id_number == "11010519491231002X"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "23812345678", "String should match pattern"),
        ("origin_risk", "extreme", "Input should be 'low', 'medium' or 'high'"),
        ("arrived_at", "2022-01-28T18:40:00", "Input should have timezone info"),
        ("id_number", "110105194912310021", "check digit does not match"),
    ],
)
def test_invalid_fields_are_named(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ReportIn.model_validate({**VALID, field: value})
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    assert message in errors[0]["msg"]


def test_arrival_in_the_future_is_refused_beyond_tolerance() -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert ReportIn.model_validate({**VALID, "arrived_at": soon})
    with pytest.raises(ValidationError, match="arrival time is in the future"):
        ReportIn.model_validate({**VALID, "arrived_at": later})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ReportIn.model_validate({**VALID, "nationality": "CN"})
