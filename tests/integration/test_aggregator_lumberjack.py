"""Shippers -> aggregator -> the real OpenSearch over real loopback sockets: many concurrent shippers,
acks only after indexing, backpressure from a bounded queue, metrics and readiness."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest
from opensearchpy import AsyncOpenSearch

from aggregator.app import Aggregator
from logship.lumberjack.client import LumberjackClient
from tests.integration.test_aggregator_opensearch import counts, make_config

pytestmark = pytest.mark.integration


async def http_get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(10)) as r:
        return r.status, await r.read()


def window(shipper: int, start: int, size: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "@timestamp": "2026-02-01T12:00:00.000Z",
                "message": f"shipper {shipper} line {i}",
                "tags": ["containers"] if i % 2 else ["app"],
                "@metadata": {"_id": f"s{shipper}-{i}"},
                "host": {"name": f"node-{shipper}"},
            }
        )
        for i in range(start, start + size)
    ]


async def test_many_concurrent_shippers(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    shippers, windows, size = 20, 5, 200
    cfg = make_config(opensearch_url, index_prefix, tmp_path, bulk={"max_docs": 1000, "concurrency": 2})
    agg = Aggregator(cfg)
    await agg.start(setup_indices=False)
    try:

        async def ship(n: int) -> None:
            client = LumberjackClient([f"127.0.0.1:{agg.server.port}"], compression_level=3, timeout=30)
            try:
                for w in range(windows):
                    await client.send(window(n, w * size, size))
            finally:
                await client.close()

        await asyncio.wait_for(asyncio.gather(*(ship(n) for n in range(shippers))), 120)
        total = shippers * windows * size
        got = await counts(os_client, index_prefix)
        assert got == {
            f"{index_prefix}containers-2026.02.01": total // 2,
            f"{index_prefix}app-2026.02.01": total // 2,
        }
        assert agg.metrics.events_in._value.get() == total
        assert agg.metrics.indexed._value.get() == total
        assert agg.pipeline.outstanding == 0

        metrics = (await http_get(f"http://127.0.0.1:{agg.ops.port}/metrics"))[1].decode()
        assert f"logship_aggregator_events_indexed_total {float(total)}" in metrics
        assert "logship_aggregator_bulk_latency_seconds_bucket" in metrics
        assert "logship_aggregator_queue_events 0.0" in metrics
        assert "logship_lumberjack_connections" in metrics
        status, body = await http_get(f"http://127.0.0.1:{agg.ops.port}/readyz")
        assert status == 200
        assert b"OpenSearch 2." in body
    finally:
        await agg.shutdown()


async def test_full_queue_stops_reading_until_room(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    """With a queue of 300 events, at most 300 are ever outstanding, however many shippers push."""
    cfg = make_config(opensearch_url, index_prefix, tmp_path, queue_max_events=300, bulk={"max_docs": 100})
    agg = Aggregator(cfg)
    await agg.start(setup_indices=False)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, agg.pipeline.outstanding)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    try:

        async def ship(n: int) -> None:
            client = LumberjackClient([f"127.0.0.1:{agg.server.port}"], compression_level=0, timeout=30)
            try:
                for w in range(4):
                    await client.send(window(n, w * 100, 100))
            finally:
                await client.close()

        await asyncio.wait_for(asyncio.gather(*(ship(n) for n in range(8))), 120)
    finally:
        watcher.cancel()
        await agg.shutdown()
    assert 100 <= peak <= 300
    got = await counts(os_client, index_prefix)
    assert sum(got.values()) == 8 * 4 * 100


async def test_readyz_fails_when_opensearch_does_not_answer(tmp_path: Path) -> None:
    cfg = make_config(
        "http://127.0.0.1:9",
        "t-none-",
        tmp_path,
        opensearch={"hosts": ["http://127.0.0.1:9"], "timeout": "2s"},
        template={"install": True, "name": "t-none-tmpl"},
    )
    agg = Aggregator(cfg)
    starting = asyncio.create_task(agg.start())  # retries the index template until OpenSearch answers
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            if agg.ops.port:
                break
        status, body = await http_get(f"http://127.0.0.1:{agg.ops.port}/readyz")
        assert status == 503 and b"starting" in body  # alive, not ready: no listener yet
        assert (await http_get(f"http://127.0.0.1:{agg.ops.port}/healthz"))[0] == 200
        assert not starting.done()
        starting.cancel()
        await agg.pipeline.sender.stop()
        agg.pipeline.start()
        await agg.server.start()
        agg.accepting = True
        status, body = await http_get(f"http://127.0.0.1:{agg.ops.port}/readyz")
        assert status == 503
        assert b"OpenSearch does not answer" in body
    finally:
        starting.cancel()
        await agg.shutdown()


async def test_mtls_listener_accepts_only_clients_with_a_certificate(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    import ssl

    import trustme

    from logship.tls import TLSSettings, client_context

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("shipper-1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    tls = {
        "enabled": True,
        "ca_file": str(tmp_path / "ca.pem"),
        "cert_file": str(tmp_path / "server.pem"),
        "key_file": str(tmp_path / "server.pem"),
        "require_client_cert": True,
    }
    cfg = make_config(opensearch_url, index_prefix, tmp_path, listen={"host": "127.0.0.1", "port": 0, "tls": tls})
    agg = Aggregator(cfg)
    await agg.start(setup_indices=False)
    try:
        good_ctx = client_context(
            TLSSettings(
                enabled=True,
                ca_file=str(tmp_path / "ca.pem"),
                cert_file=str(tmp_path / "client.pem"),
                key_file=str(tmp_path / "client.pem"),
            )
        )
        good = LumberjackClient([f"127.0.0.1:{agg.server.port}"], ssl=good_ctx, compression_level=3, timeout=10)
        await asyncio.wait_for(good.send(window(1, 0, 50)), 30)
        await good.close()
        assert await counts(os_client, index_prefix) == {
            f"{index_prefix}containers-2026.02.01": 25,
            f"{index_prefix}app-2026.02.01": 25,
        }
        # without a client certificate the handshake fails: nothing is accepted
        no_cert = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            reader, writer = await asyncio.open_connection("127.0.0.1", agg.server.port, ssl=no_cert)
            writer.write(b"2W\x00\x00\x00\x01")
            await writer.drain()
            if not await asyncio.wait_for(reader.read(1), 10):
                raise ConnectionError("closed by the server")
        assert agg.metrics.events_in._value.get() == 50
    finally:
        await agg.shutdown()
