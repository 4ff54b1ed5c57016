"""What the OpenSearch sink tests share: a node-by-node sink, a `_bulk` body of numbered documents, and the
per-node request counters they read."""

from __future__ import annotations

import orjson

from aggregator.auth import Redactor, build_client
from aggregator.config import OpenSearchConfig
from aggregator.metrics import Metrics
from aggregator.sink import OpenSearchSink


def node_sink(
    hosts: list[str],
    metrics: Metrics,
    *,
    timeout: float = 10.0,
    probe_timeout: float = 2.0,
    request_timeout: float | None = None,
    sniff: float | None = None,
) -> OpenSearchSink:
    """A sink over `hosts` with one client per node (`timeout`: the clients' `opensearch.timeout`)."""
    cfg = OpenSearchConfig(hosts=hosts, timeout=timeout)
    return OpenSearchSink(
        lambda url: build_client(cfg, hosts=[url])[0],
        hosts,
        Redactor([]),
        sniff_interval=sniff,
        probe_timeout=probe_timeout,
        request_timeout=request_timeout,
        metrics=metrics,
    )


def bulk_body(index: str, first: int, n: int) -> bytes:
    """`create` actions for documents `{"n": first}` .. `{"n": first + n - 1}`, their ids the numbers."""
    lines = []
    for i in range(first, first + n):
        lines.append(orjson.dumps({"create": {"_index": index, "_id": str(i)}}))
        lines.append(orjson.dumps({"n": i}))
    return b"\n".join(lines) + b"\n"


def node_requests(metrics: Metrics, url: str, result: str = "answered") -> float:
    """`logship_aggregator_opensearch_node_requests_total{node=url, result=result}`."""
    return float(metrics.node_requests.labels(url, result)._value.get())
