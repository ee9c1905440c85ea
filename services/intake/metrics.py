"""Intake's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Every record posted counts once here, under the status the API answered it with:
# accepted (the broker confirmed it), duplicate (a repeat answered with the original id),
# cleared (a checkpoint scan that is no report), in_progress (its original is still being
# confirmed), unavailable (503: the broker did not confirm), rejected (invalid).
REPORTS = Counter(
    "gridline_intake_reports_total",
    "Records posted, by source and outcome (the status answered).",
    ["source", "outcome"],
)
BROKER_CONFIRM_SECONDS = Histogram(
    "gridline_intake_broker_confirm_seconds",
    "Seconds from sending a report to the broker's confirm.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# A rejected record counts once per rule it broke; the rules are a fixed set.
VALIDATION_PROBLEMS = Counter(
    "gridline_intake_validation_problems_total",
    "Problems found in records refused as invalid, by source and the rule broken.",
    ["source", "rule"],
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
