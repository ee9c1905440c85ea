"""The request and response shapes of intake's HTTP API."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from services.intake.domain import id_number_problem

Source = Literal["health_code_feed", "self_report", "cadre_visit", "checkpoint_scan", "neighbour"]
Risk = Literal["low", "medium", "high"]

# Clocks of phones and feeds drift; a few minutes ahead is not a mistake.
ARRIVAL_FUTURE_TOLERANCE = timedelta(minutes=5)


class ReportIn(BaseModel):
    """One arrival report as an integrator, a resident or a cadre posts it."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "source": "health_code_feed",
                    "source_record_id": "lzbb-20220128-000123",
                    "name": "张伟",
                    "id_number": "620102199003071234",
                    "phone": "13812345678",
                    "origin_region_code": "310115",
                    "origin_name": "上海市浦东新区",
                    "origin_risk": "medium",
                    "arrived_at": "2022-01-28T18:40:00+08:00",
                    "address": "皋兰县石洞镇三和社区三和小区23号楼2单元301室",
                }
            ]
        },
    )

    source: Source = Field(description="Where the report came from.")
    source_record_id: str | None = Field(
        None, min_length=1, max_length=128, description="The record's id in its source system."
    )
    name: str = Field(min_length=1, max_length=64, description="The person's name.")
    id_number: str = Field(description="18-digit resident ID number (GB 11643).")
    phone: Annotated[str, Field(pattern=r"^1[3-9]\d{9}$", description="Mainland mobile number.")]
    origin_region_code: Annotated[
        str, Field(pattern=r"^\d{6}$", description="GB/T 2260 code of where they came from.")
    ]
    origin_name: str = Field(min_length=1, max_length=100, description="Place name of the origin.")
    origin_risk: Risk = Field(description="Risk level of the origin area.")
    arrived_at: AwareDatetime = Field(description="Arrival time with its time zone.")
    address: str = Field(min_length=2, max_length=200, description="Where they stay, as written.")

    @field_validator("*", mode="before")
    @classmethod
    def _nfkc(cls, value: Any) -> Any:
        # Full-width digits and letters (１３８…, ＡＢ) are common in pasted records.
        return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value

    @field_validator("arrived_at")
    @classmethod
    def _not_in_future(cls, value: datetime) -> datetime:
        if value - datetime.now(UTC) > ARRIVAL_FUTURE_TOLERANCE:
            raise ValueError("arrival time is in the future")
        return value

    @field_validator("id_number")
    @classmethod
    def _valid_id_number(cls, value: str) -> str:
        value = value.upper()
        problem = id_number_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class ReportAcceptedOut(BaseModel):
    """The answer once the broker holds the report."""

    report_id: str
    status: Literal["accepted"] = "accepted"
    replayed: bool = Field(False, description="True when an Idempotency-Key was seen before.")
