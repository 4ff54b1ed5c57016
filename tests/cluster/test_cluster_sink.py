"""The aggregator's OpenSearch sink against the real 3-node cluster: requests spread over the nodes,
a node that is not there taken out and kept out by the probes, sniffing the cluster's addresses."""

from __future__ import annotations

import asyncio

import orjson
from opensearchpy import AsyncOpenSearch

from aggregator.auth import Redactor, build_client
from aggregator.config import OpenSearchConfig
from aggregator.metrics import Metrics
from aggregator.sink import OpenSearchSink
from logship.demo.pipeline import free_port
from tests.cluster.conftest import Cluster, http


def _sink(hosts: list[str], metrics: Metrics, sniff: float | None = None) -> OpenSearchSink:
    cfg = OpenSearchConfig(hosts=hosts, timeout=10)

    def connect(url: str) -> AsyncOpenSearch:
        return build_client(cfg, hosts=[url])[0]

    return OpenSearchSink(connect, hosts, Redactor([]), sniff_interval=sniff, probe_timeout=2.0, metrics=metrics)


def _body(index: str, first: int, n: int) -> bytes:
    out = b""
    for i in range(first, first + n):
        out += orjson.dumps({"create": {"_index": index, "_id": str(i)}}) + b"\n" + orjson.dumps({"n": i}) + b"\n"
    return out


def _requests(metrics: Metrics, url: str, result: str = "answered") -> float:
    return float(metrics.node_requests.labels(url, result)._value.get())


async def test_requests_spread_over_the_nodes_and_a_missing_node_stays_out(
    opensearch_cluster: Cluster, index_prefix_cluster: str
) -> None:
    missing = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    urls = [*opensearch_cluster.urls, missing]
    metrics = Metrics()
    sink = _sink(urls, metrics)
    index = f"{index_prefix_cluster}spread"
    try:
        for k in range(30):
            response = await sink.bulk(_body(index, k * 10, 10), 10)
            assert response.get("errors") is False
        # the missing node was tried once, taken out at once, and its request went elsewhere
        assert _requests(metrics, missing, "unreachable") == 1 and _requests(metrics, missing) == 0
        assert metrics.node_up.labels(missing)._value.get() == 0
        assert sink.pool.healthy == opensearch_cluster.urls
        counts = [_requests(metrics, u) for u in opensearch_cluster.urls]
        assert sum(counts) == 30 and min(counts) >= 9, counts
        await asyncio.sleep(3.0)  # probes ran (backoff from 1 s) and it is still out
        assert missing not in sink.pool.healthy and _requests(metrics, missing, "unreachable") == 1
    finally:
        await sink.close()
    http(f"{opensearch_cluster.urls[0]}/{index}/_refresh", "POST")
    assert http(f"{opensearch_cluster.urls[0]}/{index}/_count")["count"] == 300
    http(f"{opensearch_cluster.urls[0]}/{index}", "DELETE")


async def test_sniffing_finds_every_node_from_one(opensearch_cluster: Cluster) -> None:
    metrics = Metrics()
    sink = _sink([opensearch_cluster.urls[0]], metrics, sniff=60.0)
    try:
        await sink.sniff()
        assert sink.pool.urls == sorted(opensearch_cluster.urls)
        assert all(metrics.node_up.labels(u)._value.get() == 1 for u in opensearch_cluster.urls)
    finally:
        await sink.close()
