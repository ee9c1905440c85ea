"""Risk areas with their history, and the policy that turns origin risk into measure and plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gridline.contracts.enums import REPORT_SOURCE_NAMES, RISK_LEVELS, RiskName, SourceName
from gridline.contracts.v1 import events_pb2


def risk_name(stored: str) -> RiskName:
    """A risk level as stored, checked to be one of the names."""
    for name in RISK_LEVELS:
        if stored == name:
            return name
    raise ValueError(f"unknown risk level {stored!r}")


DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.yaml")


@dataclass(frozen=True, slots=True)
class RiskArea:
    """One recorded change: from `valid_from` (until `valid_to`) the region has this level."""

    region_code: str
    level: RiskName
    valid_from: datetime
    valid_to: datetime | None
    changed_at: datetime

    def covers(self, region_code: str, at: datetime) -> bool:
        """Whether this entry speaks for the region (or a place inside it) at that moment."""
        # "310000" is the province, "310100" the city: trailing zero pairs widen the area.
        area = self.region_code
        while area.endswith("00") and len(area) > 2:
            area = area[:-2]
        inside = region_code.startswith(area)
        return inside and self.valid_from <= at and (self.valid_to is None or at < self.valid_to)


class RiskAreas:
    """Every change ever made; the latest change covering a region decides its level."""

    def __init__(self, history: list[RiskArea] | None = None) -> None:
        self.history = sorted(history or [], key=lambda a: a.changed_at)

    def level_of(self, region_code: str, at: datetime) -> RiskName | None:
        """The region's level at that moment, if any change covers it."""
        for area in reversed(self.history):
            if area.covers(region_code, at):
                return area.level
        return None

    def current(self, at: datetime) -> list[RiskArea]:
        """The latest entry of each region that is in force at that moment."""
        latest: dict[str, RiskArea] = {}
        for area in self.history:
            latest[area.region_code] = area
        return [a for a in latest.values() if a.covers(a.region_code, at)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Measure(_Strict):
    """A control measure: how long and on which days a test is taken."""

    name: str = Field(min_length=1)
    days: int = Field(ge=0, le=60)
    test_days: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tests_within_measure(self) -> Measure:
        if any(d < 1 or d > self.days for d in self.test_days):
            raise ValueError(f"test days must fall within the {self.days} days of the measure")
        return self


class Plan(_Strict):
    """The follow-up: verify within N hours, a home visit, daily check-in times."""

    verify_within_hours: int = Field(gt=0, le=72)
    home_visit: bool
    check_in_times: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _times(self) -> Plan:
        for time in self.check_in_times:
            try:
                datetime.strptime(time, "%H:%M")
            except ValueError as error:
                raise ValueError(f"check-in time {time!r} is not HH:MM") from error
        return self


class Rule(_Strict):
    """Origin risk (and optionally source) to a measure and a plan."""

    risk: RiskName
    source: SourceName | None = None
    measure: str
    plan: str


class Policy(_Strict):
    """The policy file: versioned measures, plans and the rules choosing them."""

    version: str = Field(min_length=1)
    measures: dict[str, Measure]
    plans: dict[str, Plan]
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> Policy:
        for i, rule in enumerate(self.rules):
            if rule.measure not in self.measures:
                raise ValueError(f"rules[{i}]: no measure {rule.measure!r}")
            if rule.plan not in self.plans:
                raise ValueError(f"rules[{i}]: no plan {rule.plan!r}")
        fallback = {r.risk for r in self.rules if r.source is None}
        missing = set(RISK_LEVELS) - fallback
        if missing:
            raise ValueError(f"no rule for any source at risk {sorted(missing)}")
        return self


class PolicyError(ValueError):
    """A policy file that cannot be used."""


def load_policy(path: Path) -> Policy:
    """The validated policy in a YAML file (PolicyError says what is wrong, and where)."""
    try:
        return Policy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as error:
        raise PolicyError(f"{path}: {error}") from error
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in error.errors()
        )
        raise PolicyError(f"{path}: {problems}") from error


@dataclass(frozen=True, slots=True)
class Decision:
    """What must happen to the person, and which policy version said so."""

    risk: RiskName
    measure_id: str
    measure: Measure
    plan_id: str
    plan: Plan
    policy_version: str


def decide(
    policy: Policy,
    areas: RiskAreas,
    *,
    region_code: str,
    reported_risk: int,
    source: int,
    at: datetime,
) -> Decision:
    """The measure and plan for an arrival: the risk areas' level for the origin if listed,
    else the level the report came with (unknown counts as low)."""
    reported: RiskName = next((n for n, v in RISK_LEVELS.items() if v == reported_risk), "low")
    risk = areas.level_of(region_code, at) or reported
    source_name = REPORT_SOURCE_NAMES.get(source)
    rule = next(r for r in policy.rules if r.risk == risk and r.source in (None, source_name))
    return Decision(
        risk=risk,
        measure_id=rule.measure,
        measure=policy.measures[rule.measure],
        plan_id=rule.plan,
        plan=policy.plans[rule.plan],
        policy_version=policy.version,
    )


def decide_report(
    policy: Policy, areas: RiskAreas, report: events_pb2.ReportAccepted, at: datetime
) -> Decision:
    """The measure and plan for an accepted report: by its origin, the risk it came with and
    its source."""
    return decide(
        policy,
        areas,
        region_code=report.origin_region_code,
        reported_risk=report.origin_risk,
        source=report.source,
        at=at,
    )
