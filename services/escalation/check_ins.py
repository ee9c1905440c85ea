"""Check-ins during a measure: when they are due, what is abnormal, and the SMS reply's form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gridline.contracts.v1 import common_pb2
from services.escalation.domain import Measure
from services.escalation.policy import read_yaml_config
from services.escalation.zero_reports import SHANGHAI

SYMPTOMS = ("发热", "咳嗽", "乏力", "咽痛", "腹泻", "嗅觉减退", "味觉减退", "呼吸困难")


class CheckInRefused(ValueError):
    """A check-in that cannot be taken; the message says why."""


class HealthCentre(BaseModel):
    """The township health centre group told of a fever."""

    model_config = ConfigDict(extra="forbid")

    group_id: str = Field(min_length=1)
    group_name: str = ""


class CheckInConfig(BaseModel):
    """The check-in file's shape (every key optional)."""

    model_config = ConfigDict(extra="forbid")

    times: list[time] = Field([time(8), time(15)], min_length=1)  # Asia/Shanghai
    grace_minutes: float = Field(120, gt=0)
    fever_celsius: float = Field(37.3, ge=35, le=42)
    symptoms: list[str] = list(SYMPTOMS)
    days: dict[Measure, int] = {Measure.QUARANTINE: 14, Measure.MONITORING: 7}
    # Township office group id -> its health centre's group.
    health_centres: dict[str, HealthCentre] = {}


@dataclass(frozen=True)
class CheckInRules:
    """The validated check-in rules."""

    config: CheckInConfig = field(default_factory=CheckInConfig)

    @property
    def grace(self) -> timedelta:
        """How late a check-in may be before the cadre is told (the liaison after twice that)."""
        return timedelta(minutes=self.config.grace_minutes)

    def slots(self, start: datetime, measure: Measure) -> list[datetime]:
        """The check-in times of a measure starting at `start`, for its number of days."""
        first_day = start.astimezone(SHANGHAI).date()
        days = self.config.days.get(measure, 14)
        moments = [
            datetime.combine(first_day + timedelta(days=d), at, SHANGHAI)
            for d in range(days + 1)
            for at in sorted(self.config.times)
        ]
        end = start + timedelta(days=days)
        return [m for m in moments if start < m <= end]

    def abnormal(self, temperature: float | None, symptoms: list[str]) -> str | None:
        """Why a check-in needs people at once (fever or a listed symptom), or None."""
        reasons = []
        if temperature is not None and temperature >= self.config.fever_celsius:
            reasons.append(f"体温{temperature:.1f}℃")
        listed = [s for s in symptoms if s in self.config.symptoms]
        reasons += listed
        return "、".join(reasons) or None

    def health_centre(self, township_group_id: str) -> common_pb2.Responsible | None:
        """The health centre group of a township office group, when configured."""
        centre = self.config.health_centres.get(township_group_id)
        if centre is None:
            return None
        return common_pb2.Responsible(
            level=common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
            group_id=centre.group_id,
            group_name=centre.group_name,
        )


def load_rules(path: Path | None) -> CheckInRules:
    """The rules of a YAML file, validated (PolicyError naming the fault); defaults without one."""
    if path is None:
        return CheckInRules()
    return CheckInRules(read_yaml_config(path, CheckInConfig, empty={}))


@dataclass(frozen=True)
class SmsCheckIn:
    """What an SMS reply said: the task's check-in code, the temperature, any symptoms."""

    code: str
    temperature: float | None
    symptoms: list[str]


_SMS = re.compile(r"^\s*([0-9a-fA-F]{8})(?=\s|$)\s*(?:(\d{2}(?:\.\d)?)\s*(?:℃|度|C)?)?\s*(.*)$")


def check_in_code(task_id: str) -> str:
    """The short code a resident sends back by SMS (the first 8 characters of the task id)."""
    return task_id[:8].upper()


def parse_sms(text: str) -> SmsCheckIn:
    """Read `CODE 36.8 咳嗽` (temperature and symptoms optional but not both absent)."""
    found = _SMS.match(text.replace("，", " ").replace(",", " "))
    if found is None:
        raise CheckInRefused(
            "reply as: <8-character code> <temperature> [symptoms], e.g. 1A2B3C4D 36.8"
        )
    code, temperature, rest = found.groups()
    symptoms = [word for word in re.split(r"[\s、]+", rest) if word and word != "无"]
    value = float(temperature) if temperature else None
    if value is not None and not 34.0 <= value <= 43.0:
        raise CheckInRefused(f"temperature {value} is outside 34-43 °C; check the reply")
    if value is None and not symptoms and "无" not in rest:
        raise CheckInRefused("the reply has neither a temperature nor symptoms")
    return SmsCheckIn(code.upper(), value, symptoms)
