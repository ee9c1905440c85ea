"""Intake's rules: ID number checks and turning a valid report into its event."""

from __future__ import annotations

from datetime import date, datetime

from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.personal import Sealer, mask_id_number, mask_name, mask_phone, person_key
from gridline.timestamps import to_timestamp

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"

SOURCES = {
    "health_code_feed": common_pb2.REPORT_SOURCE_HEALTH_CODE_FEED,
    "self_report": common_pb2.REPORT_SOURCE_SELF_REPORT,
    "cadre_visit": common_pb2.REPORT_SOURCE_CADRE_VISIT,
    "checkpoint_scan": common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN,
    "neighbour": common_pb2.REPORT_SOURCE_NEIGHBOUR,
}
RISKS = {
    "low": common_pb2.RISK_LEVEL_LOW,
    "medium": common_pb2.RISK_LEVEL_MEDIUM,
    "high": common_pb2.RISK_LEVEL_HIGH,
}


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def id_number_problem(value: str) -> str | None:
    """Why a resident ID number is invalid, or None when it is valid."""
    if len(value) != 18:
        return f"must have 18 characters, has {len(value)}"
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return "must be 17 digits followed by a digit or X"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"birth date {value[6:14]} is not a real date"
    if value[17] != id_check_char(value[:17]):
        return "check digit does not match (GB 11643)"
    return None


def report_event(
    *,
    report_id: str,
    accepted_at: datetime,
    source: str,
    source_record_id: str | None,
    name: str,
    id_number: str,
    phone: str,
    origin_region_code: str,
    origin_name: str,
    origin_risk: str,
    arrived_at: datetime,
    address: str,
    person_key_secret: str,
    sealer: Sealer,
) -> events_pb2.ReportAccepted:
    """The `reports.v1` event of a validated report: personal data hashed, sealed and masked."""
    return events_pb2.ReportAccepted(
        report_id=report_id,
        person_key=person_key(person_key_secret, id_number),
        source=SOURCES[source],
        source_record_id=source_record_id or "",
        name_masked=mask_name(name),
        id_number_masked=mask_id_number(id_number),
        id_number_sealed=sealer.seal(id_number, "id_number"),
        phone_masked=mask_phone(phone),
        phone_sealed=sealer.seal(phone, "phone"),
        origin_region_code=origin_region_code,
        origin_name=origin_name,
        origin_risk=RISKS[origin_risk],
        arrived_at=to_timestamp(arrived_at),
        address=address,
        accepted_at=to_timestamp(accepted_at),
    )
