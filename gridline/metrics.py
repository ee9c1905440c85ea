"""Metrics every service shares, declared once (service-specific ones live in each service)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Records a consumer group finished with, by what became of them:
# processed, duplicate (event id already applied), dead_lettered, retried (one per extra try).
CONSUMER_RECORDS = Counter(
    "gridline_consumer_records_total",
    "Records consumed, by topic, consumer group and outcome.",
    ["topic", "group", "outcome"],
)

# Time from a record's arrival in the consumer to the commit of its effect.
CONSUMER_HANDLE_SECONDS = Histogram(
    "gridline_consumer_handle_seconds",
    "Seconds spent applying one record.",
    ["topic", "group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# HTTP requests by route template, method and status code.
HTTP_REQUESTS = Counter(
    "gridline_http_requests_total",
    "HTTP requests served.",
    ["route", "method", "status"],
)

HTTP_REQUEST_SECONDS = Histogram(
    "gridline_http_request_seconds",
    "Seconds to serve one HTTP request.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
