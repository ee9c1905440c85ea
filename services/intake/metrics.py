"""Intake's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REPORTS_RECEIVED = Counter(
    "gridline_intake_reports_received_total", "Valid reports received, by source.", ["source"]
)
REPORTS_ACCEPTED = Counter(
    "gridline_intake_reports_accepted_total",
    "Reports the broker confirmed (answered 202), by source.",
    ["source"],
)
REPORTS_DUPLICATE = Counter(
    "gridline_intake_reports_duplicate_total",
    "Repeats of an Idempotency-Key answered with the original id, by source.",
    ["source"],
)
REPORTS_UNCONFIRMED = Counter(
    "gridline_intake_reports_unconfirmed_total",
    "Reports refused with 503 because the broker did not confirm them.",
)
BROKER_CONFIRM_SECONDS = Histogram(
    "gridline_intake_broker_confirm_seconds",
    "Seconds from sending a report to the broker's confirm.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
