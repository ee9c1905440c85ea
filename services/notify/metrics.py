"""Notify's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "gridline_notify_deliveries_total",
    "Deliveries by channel and outcome (delivered, failed, queued for a digest).",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "gridline_notify_delivery_seconds",
    "Seconds one channel took to deliver, retries included.",
    ["channel"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Once per report, at its first delivery on any channel and replica: the pipeline's end-to-end
# latency. Later notices (escalations hours on) would say nothing about the pipeline.
REPORT_FIRST_DELIVERY_SECONDS = Histogram(
    "gridline_notify_report_first_delivery_seconds",
    "Seconds from a report's acceptance at intake to the first delivery about it.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 7200),
)
VENDOR_SECONDS = Histogram(
    "gridline_notify_vendor_seconds",
    "Seconds one vendor call took, by channel.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RETRIES = Counter(
    "gridline_notify_retries_total",
    "Delivery tries after the first, by channel.",
    ["channel"],
)
DIGESTED = Counter(
    "gridline_notify_digested_total",
    "Notifications sent inside a digest because their robot was over budget, by channel.",
    ["channel"],
)
DIGEST_QUEUE = Gauge(
    "gridline_notify_digest_queue",
    "Notifications waiting for their robot's budget (all replicas).",
)
