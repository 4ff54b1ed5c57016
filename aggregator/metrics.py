"""Prometheus metrics of the aggregator, on its own registry (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_in = Counter("logship_aggregator_events_in", "Events received from shippers", registry=r)
        self.indexed = Counter(
            "logship_aggregator_events_indexed",
            "Events accepted by OpenSearch (including ids it already had: 409 on create)",
            registry=r,
        )
        self.duplicates = Counter(
            "logship_aggregator_events_duplicate", "Events whose id OpenSearch already had (409)", registry=r
        )
        self.retried = Counter(
            "logship_aggregator_events_retried",
            "Event deliveries retried (429, 5xx, connection errors), by reason",
            ["reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "logship_aggregator_events_dead_lettered", "Events written to the dead-letter file", registry=r
        )
        self.bulk_requests = Counter(
            "logship_aggregator_bulk_requests", "Bulk requests by result", ["result"], registry=r
        )
        self.bulk_latency = Histogram(
            "logship_aggregator_bulk_latency_seconds",
            "Time of one _bulk request",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=r,
        )
        self.bulk_docs = Histogram(
            "logship_aggregator_bulk_docs",
            "Documents per _bulk request",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.queue_depth = Gauge(
            "logship_aggregator_queue_events", "Events received and not yet settled by OpenSearch", registry=r
        )
        self.node_up = Gauge(
            "logship_aggregator_opensearch_node_up",
            "1 while an OpenSearch node takes bulk requests, 0 while it is out (probed with backoff)",
            ["node"],
            registry=r,
        )
        self.node_requests = Counter(
            "logship_aggregator_opensearch_node_requests",
            "Bulk requests sent to each OpenSearch node, by result (answered, unreachable, timed_out)",
            ["node", "result"],
            registry=r,
        )
        self.windows_acked = Counter("logship_aggregator_windows_acked", "Windows settled and acknowledged", registry=r)
