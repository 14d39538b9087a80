"""Prometheus metrics every layer may record into, served at ``/metrics``.

Counters and histograms live in one registry per process. Gauges that
describe the database (executions by state, queue depth) are computed at
scrape time by the API, so they are right however many worker processes run.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

TASK_DURATION = Histogram(
    "flowplane_task_duration_seconds",
    "Wall time of one task attempt, by task type and final state",
    ["type", "state"],
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
LEASE_TAKEOVERS = Counter(
    "flowplane_lease_takeovers_total",
    "Executions claimed after another worker's lease expired",
    registry=REGISTRY,
)
SYNC_DURATION = Histogram(
    "flowplane_sync_duration_seconds",
    "Time to fetch a Git source and compute its plan",
    ["source"],
    registry=REGISTRY,
)
PLAN_DURATION = Histogram(
    "flowplane_plan_duration_seconds",
    "Time to validate a commit and compute its plan",
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "flowplane_http_requests_total",
    "API requests by method, route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LOOP_LAST_SUCCESS = Gauge(
    "flowplane_loop_last_success_timestamp_seconds",
    "Unix time of the last tick of a background loop that completed without error",
    ["loop"],
    registry=REGISTRY,
)
LOOP_FAILURES = Counter(
    "flowplane_loop_failures_total",
    "Ticks of a background loop that raised (the loop backs off and carries on)",
    ["loop"],
    registry=REGISTRY,
)
