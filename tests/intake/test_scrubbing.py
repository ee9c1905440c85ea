"""Free text is scrubbed at intake, before a report reaches the bus: numbers of people masked,
invisible characters removed, the rest as written."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from gridline.personal import Sealer
from services.intake.domain import report_event
from services.intake.schemas import parse_report
from tests.intake.samples import CHECKPOINT_SCAN, FEED_RECORD, VALID_REPORT

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize("record", [VALID_REPORT, FEED_RECORD, CHECKPOINT_SCAN])
def test_address_and_name_reach_the_event_scrubbed(record: dict[str, object]) -> None:
    report = parse_report(
        {
            **record,
            "name": "\u202e张\u200b伟",
            "address": "三汇小区\u200b23号楼 房东 138 1234 5678、证件 110105-19491231-002x\u2066",
        }
    )
    event = report_event(
        report_id="r1",
        accepted_at=datetime.now(UTC),
        person_key_secret="s",
        sealer=Sealer(KEY),
        **report.event_fields("620122"),
    )
    assert event.address == "三汇小区23号楼 房东 138****5678、证件 **************002X"
    assert event.name_masked == "张*"


def test_an_address_without_numbers_of_people_is_kept_as_written() -> None:
    assert parse_report(VALID_REPORT).address == VALID_REPORT["address"]


def test_an_address_of_invisible_characters_only_is_refused() -> None:
    with pytest.raises(ValueError, match="address"):
        parse_report({**VALID_REPORT, "address": "\u200b\u200b\u202e"})
