"""The aggregator's OpenSearch sink against the real 3-node cluster: requests spread over the nodes,
a node that is not there taken out and kept out by the probes, sniffing the cluster's addresses."""

from __future__ import annotations

import asyncio

from aggregator.metrics import Metrics
from logship.demo.pipeline import free_port
from tests.cluster.conftest import Cluster, http
from tests.sink_support import bulk_body, node_requests, node_sink


async def test_requests_spread_over_the_nodes_and_a_missing_node_stays_out(
    opensearch_cluster: Cluster, index_prefix_cluster: str
) -> None:
    missing = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    urls = [*opensearch_cluster.urls, missing]
    metrics = Metrics()
    sink = node_sink(urls, metrics)
    index = f"{index_prefix_cluster}spread"
    try:
        for k in range(30):
            response = await sink.bulk(bulk_body(index, k * 10, 10), 10)
            assert response.get("errors") is False
        # the missing node was tried once, taken out at once, and its request went elsewhere
        assert node_requests(metrics, missing, "unreachable") == 1 and node_requests(metrics, missing) == 0
        assert metrics.node_up.labels(missing)._value.get() == 0
        assert sink.pool.healthy == opensearch_cluster.urls
        counts = [node_requests(metrics, u) for u in opensearch_cluster.urls]
        assert sum(counts) == 30 and min(counts) >= 9, counts
        await asyncio.sleep(3.0)  # probes ran (backoff from 1 s) and it is still out
        assert missing not in sink.pool.healthy and node_requests(metrics, missing, "unreachable") == 1
    finally:
        await sink.close()
    http(f"{opensearch_cluster.urls[0]}/{index}/_refresh", "POST")
    assert http(f"{opensearch_cluster.urls[0]}/{index}/_count")["count"] == 300
    http(f"{opensearch_cluster.urls[0]}/{index}", "DELETE")


async def test_sniffing_finds_every_node_from_one(opensearch_cluster: Cluster) -> None:
    metrics = Metrics()
    sink = node_sink([opensearch_cluster.urls[0]], metrics, sniff=60.0)
    try:
        await sink.sniff()
        assert sink.pool.urls == sorted(opensearch_cluster.urls)
        assert all(metrics.node_up.labels(u)._value.get() == 1 for u in opensearch_cluster.urls)
    finally:
        await sink.close()
