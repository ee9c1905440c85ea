"""What assignment's tests share: the bundled policy's decision for a risk level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridline.contracts.v1 import common_pb2
from gridline.links import PageLinks
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
