"""The API's Prometheus metrics (``GET /metrics``).

In: one observation per request (route template, method, status, seconds) and counts of
accepted events. Out: ``ApiMetrics.render()``, the text exposition format.

Each app has its own registry (two apps in one process, as in the tests, do not share
counters). With ``lifecycle serve --workers N`` each process counts its own requests:
scrape each, or run one process per container (the default).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Seconds; ingestion waits for Temporal, so the interesting range is 1 ms to a few seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lifecycle_api_requests",
            "HTTP requests by route template, method and status code",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lifecycle_api_request_seconds",
            "HTTP request latency by route template",
            ["endpoint"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "lifecycle_api_events_accepted",
            "events accepted by Temporal (durable), by endpoint kind",
            ["kind"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "lifecycle_api_requests_shed",
            "ingestion requests answered 429/503 without accepting: busy (in-flight bound) or temporal",
            ["reason"],
            registry=self.registry,
        )
        self.unsubscribes = Counter(
            "lifecycle_api_unsubscribes",
            "unsubscribes recorded, by source (page button or RFC 8058 one-click)",
            ["source"],
            registry=self.registry,
        )

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
