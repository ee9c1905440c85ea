"""Metrics every service shares, declared once (service-specific ones live in each service).

Names follow Prometheus conventions: base units in the name (`_seconds`), `_total` on counters,
histograms for durations, and label values drawn from small fixed sets (route templates, never
raw paths; topic and partition numbers, never keys).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

# Records on the broker this member has not taken yet: the partition's high-water mark minus
# the member's position. Each member reports only the partitions it holds, so summing over
# instances gives the group's lag without double counting.
CONSUMER_LAG = Gauge(
    "gridline_consumer_lag_records",
    "Records behind the end of the partition, by topic, consumer group and partition.",
    ["topic", "group", "partition"],
)

# HTTP requests by route template, method and status code.
HTTP_REQUESTS = Counter(
    "gridline_http_requests_total",
    "HTTP requests served, by route template, method and status code.",
    ["route", "method", "status"],
)

HTTP_REQUEST_SECONDS = Histogram(
    "gridline_http_request_duration_seconds",
    "Seconds to serve one HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# gRPC calls served, by full service name, method and status code name (OK, NOT_FOUND, ...).
RPC_REQUESTS = Counter(
    "gridline_rpc_requests_total",
    "gRPC calls served, by service, method and status code.",
    ["service", "method", "code"],
)

RPC_REQUEST_SECONDS = Histogram(
    "gridline_rpc_request_duration_seconds",
    "Seconds to serve one gRPC call, by service and method.",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# Outbox rows committed but not yet confirmed by the broker, in this process.
OUTBOX_PENDING = Gauge(
    "gridline_outbox_pending_records",
    "Outbox records committed and waiting for the broker's confirm.",
)

OUTBOX_PUBLISHED = Counter(
    "gridline_outbox_published_total",
    "Outbox records the broker confirmed.",
)

# Consumer batches, by how they were applied: together, or record by record after a failure.
CONSUMER_BATCHES = Counter(
    "gridline_consumer_batches_total",
    "Batches a consumer group applied, by topic, group and mode (batch or fallback).",
    ["topic", "group", "mode"],
)

# Ledger and outbox rows deleted for being older than their retention.
RETENTION_PURGED = Counter(
    "gridline_retention_purged_total",
    "Ledger and outbox rows deleted after their retention, by table.",
    ["table"],
)

# Rows deleted because the personal data they hold is past GRIDLINE_PERSONAL_DATA_RETENTION_DAYS
# (gridline/bus/retention.py), outbox and ledger rows included.
PERSONAL_DATA_PURGED = Counter(
    "gridline_personal_data_purged_total",
    "Rows deleted after the personal-data retention, by table.",
    ["table"],
)

# The SQLAlchemy pool of each service's database (gridline/db_metrics.py). Saturation: when the
# connections in use reach the capacity, callers queue for one (and time out after 30 s).
DB_POOL_CHECKED_OUT = Gauge(
    "gridline_db_pool_checked_out_connections",
    "Database connections in use (checked out of the pool), by database.",
    ["database"],
)
DB_POOL_CAPACITY = Gauge(
    "gridline_db_pool_capacity_connections",
    "Connections the pool opens at most (its size plus its overflow), by database.",
    ["database"],
)

# Redis as its clients see it (gridline/redis_metrics.py): one observation per command or
# pipeline, failures included, so a slow or failing Redis shows before requests answer 503.
REDIS_COMMAND_SECONDS = Histogram(
    "gridline_redis_command_duration_seconds",
    "Seconds one Redis command or pipeline took, by operation (command or pipeline).",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
REDIS_ERRORS = Counter(
    "gridline_redis_errors_total",
    "Redis commands or pipelines that failed, by operation and error: connection, timeout, "
    "response (an error answered by Redis) or other.",
    ["operation", "error"],
)
