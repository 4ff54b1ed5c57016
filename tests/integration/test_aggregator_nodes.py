"""Which nodes the OpenSearch sink takes out when a bulk request times out, against the real node and
two real sockets on loopback beside it:

* a *silent* node: it accepts connections and never reads them (a paused process, SIGSTOP);
* a *stalling* node: it answers `GET /` at once and holds every `_bulk` (a healthy node whose
  requests wait for a shard copy on a paused node).

A timeout alone cannot tell the two apart; a probe of every node can. The 3-node version of this is
tests/cluster/test_cluster_faults.py, with a real paused cluster manager.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
from opensearchpy import AsyncOpenSearch

from aggregator.metrics import Metrics
from tests.sink_support import bulk_body, node_requests, node_sink

ROOT_ANSWER = orjson.dumps({"name": "stalling", "version": {"distribution": "opensearch", "number": "2.19.4"}})


@pytest.fixture
async def stalling_node() -> AsyncIterator[str]:
    held: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"GET "):
                held.append(writer)  # read nothing more, answer never
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(ROOT_ANSWER)}\r\n\r\n".encode()
                + ROOT_ANSWER
            )
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    for writer in held:
        writer.close()
    server.close()


@pytest.fixture
def silent_node() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel completes the handshakes; nothing ever reads
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def _up(metrics: Metrics, url: str) -> float:
    return float(metrics.node_up.labels(url)._value.get())


async def test_a_timeout_takes_out_the_node_that_does_not_answer_not_the_slow_one(
    opensearch_url: str, index_prefix: str, os_client: AsyncOpenSearch, stalling_node: str, silent_node: str
) -> None:
    hosts = [stalling_node, silent_node, opensearch_url]
    metrics = Metrics()
    sink = node_sink(hosts, metrics, timeout=1, probe_timeout=1.0, request_timeout=1.0)
    index = f"{index_prefix}nodes"
    stalls_seen = 0
    try:
        for k in range(8):
            response = await sink.bulk(bulk_body(index, k * 10, 10), 10)
            assert response.get("errors") is False
            stalls = node_requests(metrics, stalling_node, "timed_out")
            if stalls > stalls_seen:
                # its request timed out, but it answered the probe: it stays in, no probe backoff
                stalls_seen = int(stalls)
                assert stalling_node in sink.pool.healthy and _up(metrics, stalling_node) == 1
            # the silent node never answers: out as soon as any request has timed out
            if node_requests(metrics, stalling_node, "timed_out") + node_requests(metrics, silent_node, "timed_out"):
                assert silent_node not in sink.pool.healthy and _up(metrics, silent_node) == 0
        # round robin over the two that stay in reached the stalling node
        assert stalls_seen >= 2
        assert node_requests(metrics, opensearch_url, "answered") == 8
    finally:
        await sink.close()
    await os_client.indices.refresh(index=index)
    assert (await os_client.count(index=index))["count"] == 80
