"""What assignment's tests share: the bundled policy's decision for a risk level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridline.contracts.v1 import common_pb2
from gridline.links import PageLinks
from services.assignment.directory import Directory, Group, Person, Role
from services.assignment.grid import Node
from services.assignment.risk import (
    DEFAULT_POLICY_FILE,
    Decision,
    RiskAreas,
    decide,
    load_policy,
)

POLICY = load_policy(DEFAULT_POLICY_FILE)


def decision(risk: int = common_pb2.RISK_LEVEL_HIGH) -> Decision:
    """The bundled policy's decision for a self-reported arrival of that risk."""
    return decide(
        POLICY,
        RiskAreas(),
        region_code="310115",
        reported_risk=risk,
        source=common_pb2.REPORT_SOURCE_SELF_REPORT,
        at=datetime.now(UTC),
    )


# Task-page links as escalation checks them, for placements made in tests.
LINKS = PageLinks("http://x", b"test-link-key", timedelta(hours=24))


def small_county(nodes: list[Node]) -> Directory:
    """A directory of the given nodes with a county office and two cadres, each with a group."""
    people = [
        Person("p-county", "县联防办", Role.COUNTY_OFFICE, "13900000000", "grp-county"),
        Person("p-a", "王伟", Role.CADRE, "13900000001", "grp-a"),
        Person("p-b", "李娜", Role.CADRE, "13900000002", "grp-b"),
    ]
    groups = [
        Group("grp-county", "县联防办群"),
        Group("grp-a", "王伟工作群"),
        Group("grp-b", "李娜工作群"),
    ]
    return Directory(nodes, people, groups)
