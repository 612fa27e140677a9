"""The app's Prometheus metric families; each is present before any traffic."""
from __future__ import annotations

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

try:  # no *_created series: they only double the output
    prometheus_client.disable_created_metrics()
except AttributeError:  # pragma: no cover - older client
    pass

SERVICE_HEALTH = Gauge(
    "bot_api_service_health",
    "1 when bot-api and its dependencies (PostgreSQL, Redis) answer, else 0.",
)
REQUESTS = Counter(
    "bot_api_requests_total",
    "HTTP requests handled by bot-api.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "bot_api_request_latency_seconds",
    "HTTP request latency of bot-api in seconds.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BOOKING_OUTCOMES = Counter(
    "bot_api_booking_outcomes_total",
    "Booking operations by outcome (created, rejected, cancelled, throttled, failed).",
    ["outcome"],
)
ABUSE_OUTCOMES = Counter(
    "bot_api_abuse_outcomes_total",
    "Per-client rate-limit decisions (allowed, throttled, fail_open when Redis is down).",
    ["outcome"],
)

BOOKING_OUTCOME_LABELS = ("created", "rejected", "cancelled", "throttled", "failed")
ABUSE_OUTCOME_LABELS = ("allowed", "throttled", "fail_open")
ROUTES = ("/health", "/metrics", "/version", "/bookings", "/bookings/{booking_id}",
          "/bookings/{booking_id}/cancel", "/env-check")


def initialise() -> None:
    """Create the labelled children so every family has samples from the first scrape."""
    SERVICE_HEALTH.set(0)
    for outcome in BOOKING_OUTCOME_LABELS:
        BOOKING_OUTCOMES.labels(outcome=outcome)
    for outcome in ABUSE_OUTCOME_LABELS:
        ABUSE_OUTCOMES.labels(outcome=outcome)
    REQUESTS.labels(method="GET", route="/health", status="200")
    for route in ROUTES:
        LATENCY.labels(route=route)


initialise()
