"""`gridline up` runs the documented deadline policy: in earnest for a county, quickened for the
demo, and a flat deadline only when asked for one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gridline.contracts.v1 import common_pb2
from gridline_cli.deadlines import (
    DEADLINES_VARIABLE,
    SHIPPED_DEADLINES,
    county_deadlines,
    write_demo_deadlines,
)
from gridline_cli.platform import DEMO_DEADLINES_FILE, Platform, PlatformOptions
from services.escalation.policy import load_policy

FALLBACK = timedelta(minutes=30)
RISKS = (common_pb2.RISK_LEVEL_LOW, common_pb2.RISK_LEVEL_MEDIUM, common_pb2.RISK_LEVEL_HIGH)


def test_the_demo_runs_the_shipped_policy_with_a_minute_lasting_a_second(tmp_path: Path) -> None:
    quick = load_policy(write_demo_deadlines(SHIPPED_DEADLINES, tmp_path / "d.yaml", 1.0), FALLBACK)
    shipped = load_policy(SHIPPED_DEADLINES, FALLBACK)
    for risk in RISKS:
        # The same levels, in the same order, told at once where the policy says so.
        assert [(s.levels, s.immediate) for s in quick.steps(risk)] == [
            (s.levels, s.immediate) for s in shipped.steps(risk)
        ]
        assert [s.after * 60 for s in quick.steps(risk)] == [s.after for s in shipped.steps(risk)]
    # A high-risk arrival is told at once, not after the first deadline.
    assert quick.steps(common_pb2.RISK_LEVEL_HIGH)[0].after == timedelta(0)


def test_a_run_takes_the_countys_own_policy_from_the_environment() -> None:
    assert county_deadlines({}) == SHIPPED_DEADLINES
    assert county_deadlines({DEADLINES_VARIABLE: ""}) == SHIPPED_DEADLINES
    assert county_deadlines({DEADLINES_VARIABLE: "/etc/c.yaml"}) == Path("/etc/c.yaml")


@pytest.mark.parametrize("demo", [True, False])
def test_up_hands_the_services_the_policy_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo: bool
) -> None:
    monkeypatch.delenv(DEADLINES_VARIABLE, raising=False)
    kafka_bootstrap = "" if demo else "k:9092"  # "": no infrastructure of the county's own
    platform = Platform(PlatformOptions.for_up(tmp_path, kafka_bootstrap=kafka_bootstrap))
    given = Path(platform.deadline_settings()[DEADLINES_VARIABLE])
    if demo:
        assert given == tmp_path.resolve() / DEMO_DEADLINES_FILE
        first_low = load_policy(given, FALLBACK).steps(common_pb2.RISK_LEVEL_LOW)[0].after
        assert first_low == timedelta(seconds=240)  # 240 minutes of the policy
    else:
        assert given == SHIPPED_DEADLINES.resolve()


def test_a_flat_deadline_replaces_the_policy(tmp_path: Path) -> None:
    platform = Platform(PlatformOptions.for_up(tmp_path, ack_deadline_seconds=3.0))
    assert platform.deadline_settings() == {"GRIDLINE_ACK_DEADLINE_SECONDS": "3.0"}
