"""Check-ins during a measure: what is abnormal, the follow-up's rules, the SMS reply's form.

When check-ins are due is the task's plan's (`measures.check_in_times`), not this file's.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridline.contracts.enums import CHAIN_LEVELS
from gridline.contracts.v1 import common_pb2
from services.escalation.measures import Timing
from services.escalation.policy import LevelName, read_yaml_config

SYMPTOMS = ("发热", "咳嗽", "乏力", "咽痛", "腹泻", "嗅觉减退", "味觉减退", "呼吸困难")


class CheckInRefused(ValueError):
    """A check-in that cannot be taken; the message says why."""


class HealthCentre(BaseModel):
    """The township health centre group told of a fever."""

    model_config = ConfigDict(extra="forbid")

    group_id: str = Field(min_length=1)
    group_name: str = ""


class FollowUpConfig(BaseModel):
    """How a measure is carried out beyond its plan: reminders, tests, who is told what.

    The plan itself (days, test days, check-in times, verification deadline) is assignment's
    policy's, carried on each task.
    """

    model_config = ConfigDict(extra="forbid")

    reminder_minutes: float = Field(30, gt=0)  # before each check-in and test
    test_time: time = time(9)  # a test day's test is due then (Asia/Shanghai)
    test_grace_hours: float = Field(8, gt=0)  # then a test without a result goes up
    end_notice_hours: float = Field(24, gt=0)  # the measure's end is announced this long before
    # Told when the visit/verification is not recorded by its deadline.
    verification_missed: list[LevelName] = Field(["liaison", "community"], min_length=1)
    # Told (with the health centre) when a test has no result in time.
    test_missed: list[LevelName] = Field(["community"], min_length=1)
    # Told of a high-risk arrival at once, whatever the cadre does (a notice).
    high_risk: list[LevelName] = Field(["township_office", "county_office"], min_length=1)


class CheckInConfig(BaseModel):
    """The check-in file's shape (every key optional)."""

    model_config = ConfigDict(extra="forbid")

    grace_minutes: float = Field(120, gt=0)
    fever_celsius: float = Field(37.3, ge=35, le=42)
    symptoms: list[str] = list(SYMPTOMS)
    follow_up: FollowUpConfig = FollowUpConfig()

    @model_validator(mode="before")
    @classmethod
    def _no_times_of_its_own(cls, raw: object) -> object:
        # Check-in times and measure days are the policy's alone: a file still naming them is
        # refused with where they went, rather than silently overruled.
        if isinstance(raw, dict) and {"times", "days"} & raw.keys():
            raise ValueError(
                "times and days are no longer set here: the measure's check-in times and days"
                " come from assignment's policy file (plans.*.check_in_times, measures.*.days)"
            )
        return raw

    # Wrong check-in codes one SMS sender may send in the window before their replies are
    # refused until it has passed: a resident's typos get through, guessing does not.
    wrong_codes: int = Field(5, ge=1)
    wrong_code_window_minutes: float = Field(60, gt=0)
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

    @property
    def timing(self) -> Timing:
        """When reminders, tests and the end notice of a measure fall."""
        follow_up = self.config.follow_up
        return Timing(
            reminder=timedelta(minutes=follow_up.reminder_minutes),
            test_at=follow_up.test_time,
            test_grace=timedelta(hours=follow_up.test_grace_hours),
            end_notice=timedelta(hours=follow_up.end_notice_hours),
        )

    def levels(self, names: list[LevelName]) -> tuple[int, ...]:
        """The chain levels of the follow-up file's level names."""
        return tuple(CHAIN_LEVELS[name] for name in names)

    @property
    def wrong_code_window(self) -> timedelta:
        """How long a sender's wrong check-in codes count against them."""
        return timedelta(minutes=self.config.wrong_code_window_minutes)

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


# No 0/O, 1/I/L: read off a phone screen and typed into an SMS, nothing is mistaken for another.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# 31^8, about 2^39.6 codes: with a few thousand measures running and a sender's wrong codes
# limited (`CheckInConfig.wrong_codes`), a guess hits a running measure about once in 10^8.
CODE_LENGTH = 8
_EXAMPLE = "K7M2Q9XR 36.8"
_HOW = f"请按“打卡码 体温 症状”回复，例如：{_EXAMPLE}"

_SMS = re.compile(
    rf"^\s*([{CODE_ALPHABET}{CODE_ALPHABET.lower()}]{{{CODE_LENGTH}}})(?=\s|$)"
    r"\s*(?:([0-9]{2}(?:\.[0-9])?)\s*(?:°C|℃|度|C)?)?\s*(.*)$"
)


def new_check_in_code() -> str:
    """A fresh random check-in code (nothing about the task can tell it)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def parse_sms(text: str) -> SmsCheckIn:
    """Read `CODE 36.8 咳嗽` (temperature and symptoms optional but not both absent).

    Full-width letters and digits, as a Chinese keyboard may type them, read as their ASCII.
    """
    plain = unicodedata.normalize("NFKC", text).replace(",", " ")
    found = _SMS.match(plain)
    if found is None:
        raise CheckInRefused(f"未能识别回复内容。{_HOW}")
    code, temperature, rest = found.groups()
    symptoms = [word for word in re.split(r"[\s、]+", rest) if word and word != "无"]
    value = float(temperature) if temperature else None
    if value is not None and not 34.0 <= value <= 43.0:
        raise CheckInRefused(f"体温{value:.1f}℃不在34～43℃之间，请核对后重新回复")
    if value is None and not symptoms and "无" not in rest:
        raise CheckInRefused(f"回复中没有体温，也没有症状。{_HOW}")
    return SmsCheckIn(code.upper(), value, symptoms)
