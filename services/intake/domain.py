"""Intake's rules: documents, phones, origins, checkpoint scans, and a valid report's event."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Literal

from gridline.contracts.enums import REPORT_SOURCES, RISK_LEVELS, RiskName, SourceName
from gridline.contracts.v1 import events_pb2
from gridline.personal import Sealer, mask_id_number, mask_name, mask_phone, person_key
from gridline.timestamps import to_timestamp
from services.intake.regions import Region, RegionTable, region_table

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
# Residence permits of Taiwan residents use 83, which GB/T 2260 itself does not list.
_EXTRA_ID_PROVINCES = {"83"}
_EARLIEST_BIRTH = date(1900, 1, 1)

_RISK_ORDER = ("none", "low", "medium", "high")

# Each other document type by its own rule (the permits as issued since 2013 and before).
_DOCUMENT_PATTERNS = {
    # ICAO 9303: the document number field holds up to 9 letters and digits.
    "passport": (re.compile(r"^(?=.*\d)[A-Z0-9]{5,9}$"), "5 to 9 letters and digits, one a digit"),
    # 港澳居民来往内地通行证: H (Hong Kong) or M (Macau) and 8 digits, formerly 10.
    "hk_macau_permit": (re.compile(r"^[HM](\d{8}|\d{10})$"), "H or M followed by 8 or 10 digits"),
    # 台湾居民来往大陆通行证: 8 digits, formerly 10.
    "taiwan_permit": (re.compile(r"^(\d{8}|\d{10})$"), "8 or 10 digits"),
}
DOCUMENT_TYPES = ("resident_id", *_DOCUMENT_PATTERNS)

# How a person travelled, in the words of the register offices exchange (台账的交通方式).
Transport = Literal["自驾", "火车", "飞机", "长途客车", "其他"]

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class RuleViolation(ValueError):
    """A value breaks a named rule; `rule` is stable for clients, `message` is for people."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def id_number_problem(value: str, today: date | None = None) -> str | None:
    """Why a resident ID number is invalid, or None when it is valid."""
    try:
        check_resident_id(value, today)
    except RuleViolation as violation:
        return violation.message
    return None


def check_resident_id(value: str, today: date | None = None) -> str:
    """The normalised (upper-case) resident ID number, or RuleViolation naming the rule."""
    value = value.upper()
    if len(value) != 18:
        raise RuleViolation("id_number.length", f"must have 18 characters, has {len(value)}")
    if not value[:17].isdigit() or not value[:17].isascii() or value[17] not in "0123456789X":
        raise RuleViolation("id_number.format", "must be 17 digits followed by a digit or X")
    if value[:2] not in _EXTRA_ID_PROVINCES and region_table().province(value[:6]) is None:
        raise RuleViolation(
            "id_number.region", f"region prefix {value[:6]} names no known province (GB/T 2260)"
        )
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise RuleViolation(
            "id_number.birth_date", f"birth date {value[6:14]} is not a real date"
        ) from None
    if not _EARLIEST_BIRTH <= born <= (today or date.today()):
        raise RuleViolation("id_number.birth_date", f"birth date {value[6:14]} is not plausible")
    if value[17] != id_check_char(value[:17]):
        raise RuleViolation("id_number.check_digit", "check digit does not match (GB 11643)")
    return value


def check_document(document_type: str, number: str) -> str:
    """The normalised document number for its type, or RuleViolation naming the rule."""
    if document_type == "resident_id":
        return check_resident_id(number)
    pattern, shape = _DOCUMENT_PATTERNS[document_type]
    value = "".join(number.split()).upper()
    if not pattern.match(value):
        raise RuleViolation(f"{document_type}.format", f"a {document_type} number is {shape}")
    return value


def parse_mobile(raw: str) -> str:
    """A mainland mobile number as 11 digits, from the ways people write it.

    Accepts spaces, hyphens, dots and brackets between digits and a +86, 0086 or 86 country prefix.
    """
    digits = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not digits.isascii() or not _MOBILE.match(digits):
        raise RuleViolation(
            "phone.mainland_mobile", "must be a mainland mobile number: 11 digits starting 13-19"
        )
    return digits


class AmbiguousOrigin(RuleViolation):
    """A place name that names several divisions; `candidates` are the ones to offer."""

    def __init__(self, name: str, candidates: list[Region]) -> None:
        choices = "、".join(f"{r.code} {r.full_name}" for r in candidates)
        super().__init__(
            "origin.ambiguous_name",
            f"“{name}”有{len(candidates)}处同名地区，请写上省市。可能是：{choices}",
        )
        self.candidates = tuple(candidates)


def resolve_origin(code: str | None, name: str | None) -> tuple[str, str]:
    """The origin as (GB/T 2260 code, place name) from a code, a name, or both.

    A code must belong to a known province. A name names the most specific division it reaches
    (江苏省苏州市工业园区 is 苏州市), and must name exactly one. Given both, they must not
    contradict each other: one lies inside the other, and the more specific of them is the
    origin.
    """
    table = region_table()
    if code:
        if not (len(code) == 6 and code.isdigit() and code.isascii()):
            raise RuleViolation("origin.code_format", f"地区代码 {code} 应为6位数字")
        nearest = table.nearest(code)
        if nearest is None:
            raise RuleViolation(
                "origin.unknown_code", f"地区代码 {code} 不属于任何省份（GB/T 2260）"
            )
        named = table.by_name(name) if name else []
        agreeing = [r for r in named if _nested(table, code, r.code)]
        if named and not agreeing:
            raise RuleViolation(
                "origin.mismatch", f"“{name}”不在地区代码 {code}（{nearest.full_name}）范围内"
            )
        inner = [r for r in agreeing if r.code != code and table.within(r.code, code)]
        if len(inner) == 1:
            return inner[0].code, inner[0].full_name
        exact = table.by_code(code)
        if exact is not None:
            return code, exact.full_name
        return code, name or nearest.full_name
    if not name:
        raise RuleViolation("origin.missing", "请填写来源地：地区代码或地名")
    named = table.by_name(name)
    if not named:
        raise RuleViolation(
            "origin.unknown_name", f"未找到地名“{name}”，请写到区县，如“江苏省苏州市吴中区”"
        )
    if len(named) > 1:
        raise AmbiguousOrigin(name, named)
    return named[0].code, named[0].full_name


def _nested(table: RegionTable, code: str, other: str) -> bool:
    """Whether two codes name the same place or one inside the other; a code missing from the
    table (a division since abolished) is placed by its prefix."""
    prefixes = {code[:4] + "00", code[:2] + "0000"}
    return table.within(code, other) or table.within(other, code) or other in prefixes


def checkpoint_risk(health_code: str, itinerary_risk: str, *, from_elsewhere: bool) -> str | None:
    """What a checkpoint scan makes of a person ("scan one, check three").

    A yellow or red health code, or an itinerary through a medium or high risk area, becomes a
    report with that risk (the higher of the two). A green code and a clean itinerary are a
    low-risk arrival to register when the person comes from another province, and no report
    for anyone else (a resident about town).
    """
    code_risk = {"green": "none", "yellow": "medium", "red": "high"}[health_code]
    risk = max(code_risk, itinerary_risk, key=_RISK_ORDER.index)
    if risk in ("none", "low"):
        return "low" if from_elsewhere else None
    return risk


def from_another_province(origin_region_code: str | None, county_region_code: str) -> bool:
    """Whether an origin lies outside the county's province (the codes' first two digits)."""
    if not origin_region_code:
        return False
    return origin_region_code[:2] != county_region_code[:2]


def document_person_key(secret: str, document_type: str, number: str) -> str:
    """The person key: resident IDs alone (as before), other documents prefixed by their type."""
    subject = number if document_type == "resident_id" else f"{document_type}:{number}"
    return person_key(secret, subject)


def report_event(
    *,
    report_id: str,
    accepted_at: datetime,
    source: SourceName,
    source_record_id: str | None,
    name: str,
    document_type: str,
    id_number: str,
    phone: str,
    origin_region_code: str,
    origin_name: str,
    origin_risk: RiskName,
    arrived_at: datetime,
    address: str,
    person_key_secret: str,
    sealer: Sealer,
    transport: str = "",
) -> events_pb2.ReportAccepted:
    """The `reports.v1` event of a validated report: personal data hashed, sealed and masked.

    The full name is sealed like the ID number and phone (the register shows it to those who
    may reveal them); everyone else reads the masked name.
    """
    return events_pb2.ReportAccepted(
        report_id=report_id,
        person_key=document_person_key(person_key_secret, document_type, id_number),
        source=REPORT_SOURCES[source],
        source_record_id=source_record_id or "",
        name_masked=mask_name(name),
        id_number_masked=mask_id_number(id_number),
        id_number_sealed=sealer.seal(id_number, "id_number"),
        phone_masked=mask_phone(phone),
        phone_sealed=sealer.seal(phone, "phone"),
        origin_region_code=origin_region_code,
        origin_name=origin_name,
        origin_risk=RISK_LEVELS[origin_risk],
        arrived_at=to_timestamp(arrived_at),
        address=address,
        accepted_at=to_timestamp(accepted_at),
        name_sealed=sealer.seal(name, "name"),
        transport=transport,
    )
