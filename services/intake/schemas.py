"""The request and response shapes of intake's HTTP API, one record shape per source."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gridline.contracts.enums import REPORT_SOURCES, RiskName
from gridline.privacy import scrub_text
from services.intake.domain import (
    RuleViolation,
    Transport,
    check_document,
    checkpoint_risk,
    from_another_province,
    parse_mobile,
    resolve_origin,
)

DocumentType = Literal["resident_id", "passport", "hk_macau_permit", "taiwan_permit"]

# Clocks of phones and feeds drift; a few minutes ahead is not a mistake.
ARRIVAL_FUTURE_TOLERANCE = timedelta(minutes=5)

_COMMON_EXAMPLE: dict[str, Any] = {
    "name": "张伟",
    "id_number": "62010219900307123X",
    "phone": "13812345678",
    "origin_region_code": "310115",
    "arrived_at": "2022-01-28T18:40:00+08:00",
    "address": "皋兰县石洞镇三和社区三和小区23号楼2单元301室",
}


# Origins repeat across records, and each record checks its origin up to three times; the
# region table never changes while intake runs.
_origin = lru_cache(maxsize=4096)(resolve_origin)


def _violation(error: RuleViolation) -> PydanticCustomError:
    return PydanticCustomError(error.rule, error.message)


class ReportBase(BaseModel):
    """What every source says about an arrival."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    if TYPE_CHECKING:
        # Each source's shape declares its own `source` tag, the union's discriminator.
        source: str

    source_record_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="The record's id in its source system; a repeat of (source, id) is "
        "answered with the original result and produces nothing.",
    )
    name: str = Field(min_length=1, max_length=64, description="The person's name.")
    document_type: DocumentType = Field(
        "resident_id",
        description="resident_id: 18 digits (GB 11643: region prefix, birth date, check digit); "
        "passport; hk_macau_permit: H/M + 8 digits; taiwan_permit: 8 digits.",
    )
    id_number: str = Field(max_length=32, description="The document's number.")
    phone: str = Field(
        max_length=32, description="Mainland mobile number; +86, spaces and hyphens are allowed."
    )
    origin_region_code: str | None = Field(
        None, max_length=16, description="GB/T 2260 code of where they came from."
    )
    origin_name: str | None = Field(
        None,
        max_length=100,
        validate_default=True,
        description="Place name of the origin, simplified or traditional; enough on its own "
        "when it names one region.",
    )
    arrived_at: AwareDatetime = Field(description="Arrival time with its time zone.")
    address: str = Field(min_length=2, max_length=200, description="Where they stay, as written.")
    transport: Transport | None = Field(
        None,
        description="How they travelled, in the register's words: 自驾 (own car), 火车 (train), "
        "飞机 (plane), 长途客车 (long-distance coach), 其他 (other); left out when not known.",
    )

    @model_validator(mode="before")
    @classmethod
    def _nfkc(cls, data: Any) -> Any:
        # Full-width digits and letters (１３８…, ＡＢ) are common in pasted records.
        if not isinstance(data, dict):
            return data
        return {
            key: unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value
            for key, value in data.items()
        }

    @field_validator("name", "address", mode="before")
    @classmethod
    def _scrubbed(cls, value: Any) -> Any:
        # Free text goes on the bus and into chat messages as written: numbers of people in it
        # are masked and invisible characters removed here, before anything else sees it.
        return scrub_text(value) if isinstance(value, str) else value

    @field_validator("arrived_at")
    @classmethod
    def _not_in_future(cls, value: datetime) -> datetime:
        if value - datetime.now(UTC) > ARRIVAL_FUTURE_TOLERANCE:
            raise PydanticCustomError(
                "arrived_at.future", "arrival time is in the future (beyond 5 minutes)"
            )
        return value

    @field_validator("id_number")
    @classmethod
    def _valid_document(cls, value: str, info: ValidationInfo) -> str:
        document_type = info.data.get("document_type")
        if document_type is None:
            return value
        try:
            return check_document(document_type, value)
        except RuleViolation as error:
            raise _violation(error) from None

    @field_validator("phone")
    @classmethod
    def _valid_phone(cls, value: str) -> str:
        try:
            return parse_mobile(value)
        except RuleViolation as error:
            raise _violation(error) from None

    @field_validator("origin_region_code")
    @classmethod
    def _valid_origin_code(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                _origin(value, None)
            except RuleViolation as error:
                raise _violation(error) from None
        return value

    @field_validator("origin_name")
    @classmethod
    def _valid_origin(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "origin_region_code" not in info.data:
            return value  # the code itself was refused; that error says enough
        try:
            _origin(info.data["origin_region_code"], value)
        except RuleViolation as error:
            raise _violation(error) from None
        return value

    @model_validator(mode="after")
    def _resolve_origin(self) -> ReportBase:
        self.origin_region_code, self.origin_name = _origin(
            self.origin_region_code, self.origin_name
        )
        return self

    def risk(self, county_region_code: str) -> str | None:
        """The origin risk this record reports to the county of `county_region_code`, or None
        when it is not a report."""
        raise NotImplementedError

    def event_fields(self, county_region_code: str) -> dict[str, Any]:
        """The fields `domain.report_event` takes, for the county of `county_region_code`."""
        return {
            "source": self.source,
            "source_record_id": self.source_record_id,
            "name": self.name,
            "document_type": self.document_type,
            "id_number": self.id_number,
            "phone": self.phone,
            "origin_region_code": self.origin_region_code,
            "origin_name": self.origin_name,
            "origin_risk": self.risk(county_region_code),
            "arrived_at": self.arrived_at,
            "address": self.address,
            "transport": self.transport or "",
        }


class _RiskReport(ReportBase):
    origin_risk: RiskName = Field(description="Risk level of the origin area.")

    def risk(self, county_region_code: str) -> str | None:
        """The risk the source gave."""
        return self.origin_risk


class HealthCodeFeedReport(_RiskReport):
    """A record pushed by a city's health-code or itinerary platform (an integrator)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "health_code_feed",
                    "source_record_id": "lzbb-20220128-000123",
                    **_COMMON_EXAMPLE,
                    "origin_risk": "medium",
                }
            ]
        }
    )

    source: Literal["health_code_feed"]
    source_record_id: str = Field(
        min_length=1, max_length=128, description="The feed's record id (required for feeds)."
    )


class SelfReport(_RiskReport):
    """A resident reporting their own arrival (主动报备), e.g. from the `/report` page."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "self_report",
                    **_COMMON_EXAMPLE,
                    "origin_region_code": None,
                    "origin_name": "上海市浦東新區",
                    "origin_risk": "medium",
                }
            ]
        }
    )

    source: Literal["self_report"]


class CadreVisitReport(_RiskReport):
    """An arrival found by a household cadre door to door (入户排摸)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "cadre_visit",
                    "cadre_id": "cadre-0231",
                    **_COMMON_EXAMPLE,
                    "origin_risk": "low",
                }
            ]
        }
    )

    source: Literal["cadre_visit"]
    cadre_id: str = Field(min_length=1, max_length=64, description="The visiting cadre.")


class NeighbourReport(_RiskReport):
    """An arrival told by the micro-grid (四邻联防)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"source": "neighbour", **_COMMON_EXAMPLE, "origin_risk": "low"}]
        }
    )

    source: Literal["neighbour"]


class CheckpointScan(ReportBase):
    """A checkpoint or place-code scan: "scan one, check three" (一扫三查).

    A yellow or red health code, an itinerary through a medium or high risk area, or a positive
    test becomes a report; a green code with a clean itinerary is answered `cleared`.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "checkpoint_scan",
                    "checkpoint_id": "gaolan-toll-01",
                    **_COMMON_EXAMPLE,
                    "health_code": "yellow",
                    "itinerary_risk": "none",
                    "test_result": "negative",
                    "vaccine_doses": 3,
                }
            ]
        }
    )

    source: Literal["checkpoint_scan"]
    checkpoint_id: str = Field(min_length=1, max_length=64, description="Checkpoint or place code.")
    health_code: Literal["green", "yellow", "red"] = Field(description="Health-code colour.")
    itinerary_risk: Literal["none", "low", "medium", "high"] = Field(
        "none", description="Highest risk area the itinerary card shows in the last 14 days."
    )
    test_result: Literal["negative", "positive", "pending", "none"] = Field(
        "none", description="Latest nucleic-acid test."
    )
    vaccine_doses: int = Field(0, ge=0, le=5, description="Vaccine doses received.")

    def risk(self, county_region_code: str) -> str | None:
        """High for a positive test, else the code's and the itinerary's verdict."""
        if self.test_result == "positive":
            return "high"
        return checkpoint_risk(
            self.health_code,
            self.itinerary_risk,
            from_elsewhere=from_another_province(self.origin_region_code, county_region_code),
        )


ReportIn = Annotated[
    HealthCodeFeedReport | SelfReport | CadreVisitReport | CheckpointScan | NeighbourReport,
    Field(discriminator="source"),
]
SOURCE_NAMES = tuple(REPORT_SOURCES)
REPORT_ADAPTER: TypeAdapter[ReportIn] = TypeAdapter(ReportIn)


def parse_report(data: Any) -> ReportBase:
    """Validate one record of any source (raises pydantic's ValidationError)."""
    report: ReportBase = REPORT_ADAPTER.validate_python(data)
    return report


class ReportAcceptedOut(BaseModel):
    """The answer once the broker holds the report (or a scan that is not a report, or a
    validate-only post)."""

    report_id: str | None = Field(None, description="Set when the record became a report.")
    status: Literal["accepted", "cleared", "validated"] = Field(
        "accepted",
        description="validated: validate-only, would have been accepted; nothing was published.",
    )
    replayed: bool = Field(
        False, description="True when the Idempotency-Key or (source, record id) was seen before."
    )
