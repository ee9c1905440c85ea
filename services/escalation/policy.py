"""Deadlines per origin risk: when, after assignment, which levels of the chain are told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gridline.contracts.enums import CHAIN_LEVELS, RISK_LEVELS
from gridline.contracts.v1 import common_pb2

# The levels a task can go up to, from the bottom of the chain.
LevelName = Literal["liaison", "community", "township_office", "county_office"]


ConfigT = TypeVar("ConfigT", bound=BaseModel)


class PolicyError(ValueError):
    """The deadline configuration is not valid; the message says where."""


class DeadlineStep(BaseModel):
    """After `after_minutes` without acknowledgement, these levels are told."""

    model_config = ConfigDict(extra="forbid")

    after_minutes: float = Field(gt=0)
    notify: list[LevelName] = Field(min_length=1)


class RiskPlan(BaseModel):
    """One origin risk's escalation plan."""

    model_config = ConfigDict(extra="forbid")

    # Told on assignment, before any deadline (a high-risk origin).
    immediate: list[LevelName] = []
    steps: list[DeadlineStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _ascending(self) -> RiskPlan:
        afters = [step.after_minutes for step in self.steps]
        if afters != sorted(afters) or len(set(afters)) != len(afters):
            raise ValueError("steps must come in strictly increasing after_minutes")
        return self


class DeadlineConfig(BaseModel):
    """The file's shape: one plan per origin risk; an unknown risk uses `medium`."""

    model_config = ConfigDict(extra="forbid")

    low: RiskPlan
    medium: RiskPlan
    high: RiskPlan


@dataclass(frozen=True)
class Step:
    """One point of a plan: how long after assignment, which levels, and why."""

    after: timedelta
    levels: tuple[int, ...]
    immediate: bool


class DeadlinePolicy:
    """The validated plans, as steps counted from the assignment."""

    def __init__(self, config: DeadlineConfig) -> None:
        self._plans: dict[int, list[Step]] = {
            level: _steps(getattr(config, name)) for name, level in RISK_LEVELS.items()
        }

    def steps(self, origin_risk: int) -> list[Step]:
        """The steps of a risk; an unspecified risk is treated as medium."""
        return self._plans.get(origin_risk, self._plans[common_pb2.RISK_LEVEL_MEDIUM])

    def step(self, origin_risk: int, index: int) -> Step | None:
        """The step at `index`, or None past the last."""
        steps = self.steps(origin_risk)
        return steps[index] if index < len(steps) else None

    def deadline(self, origin_risk: int, index: int, assigned_at: datetime) -> datetime | None:
        """When step `index` falls due, or None when no step remains."""
        step = self.step(origin_risk, index)
        return None if step is None else assigned_at + step.after


def _steps(plan: RiskPlan) -> list[Step]:
    steps = []
    if plan.immediate:
        steps.append(Step(timedelta(0), tuple(CHAIN_LEVELS[n] for n in plan.immediate), True))
    for step in plan.steps:
        levels = tuple(CHAIN_LEVELS[n] for n in step.notify)
        steps.append(Step(timedelta(minutes=step.after_minutes), levels, False))
    return steps


def every_level_after(ack_deadline: timedelta) -> DeadlinePolicy:
    """The plan without a file: one level further up at each multiple of `ack_deadline`."""
    minutes = ack_deadline.total_seconds() / 60
    plan = RiskPlan(
        steps=[
            DeadlineStep(after_minutes=minutes * (i + 1), notify=[name])
            for i, name in enumerate(get_args(LevelName))
        ]
    )
    return DeadlinePolicy(DeadlineConfig(low=plan, medium=plan, high=plan))


def load_policy(path: Path | None, ack_deadline: timedelta) -> DeadlinePolicy:
    """The policy of a YAML file, validated; without a file, `every_level_after(ack_deadline)`.

    Raises PolicyError naming the file and the faulty field, so a bad file stops the start.
    """
    if path is None:
        return every_level_after(ack_deadline)
    return DeadlinePolicy(read_yaml_config(path, DeadlineConfig))


def read_yaml_config(path: Path, model: type[ConfigT], *, empty: object = None) -> ConfigT:
    """`model` validated from a YAML file; PolicyError names the file and the fault.

    `empty` is what a file holding nothing stands for: None (refused) unless the caller passes
    `{}` to take the model's defaults.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return model.model_validate(empty if raw is None else raw)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
