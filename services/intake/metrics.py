"""Intake's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REPORTS_RECEIVED = Counter(
    "gridline_intake_reports_received_total", "Valid records received, by source.", ["source"]
)
REPORTS_ACCEPTED = Counter(
    "gridline_intake_reports_accepted_total",
    "Reports the broker confirmed (answered 202), by source.",
    ["source"],
)
REPORTS_DUPLICATE = Counter(
    "gridline_intake_reports_duplicate_total",
    "Repeats (Idempotency-Key or source record id) answered with the original id.",
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
REPORTS_REJECTED = Counter(
    "gridline_intake_reports_rejected_total",
    "Records refused as invalid, by source and the rule they broke.",
    ["source", "rule"],
)
SCANS_CLEARED = Counter(
    "gridline_intake_scans_cleared_total",
    "Checkpoint scans that were not reports (green code, clean itinerary).",
)
RATE_LIMITED = Counter(
    "gridline_intake_rate_limited_total", "Requests refused with 429 over a caller's rate."
)
HONEYPOT_CAUGHT = Counter(
    "gridline_intake_honeypot_caught_total",
    "Self-report page posts that filled the hidden field (bots), answered but dropped.",
)
CASES_JOINED = Counter(
    "gridline_intake_cases_joined_total",
    "Reports of a person already reported within the case window (merged into that case).",
    ["source"],
)
