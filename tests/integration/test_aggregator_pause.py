"""OpenSearch frozen (SIGSTOP) mid-stream, then resumed (SIGCONT): acks are held meanwhile (the shippers
see only keepalives), and afterwards every event sent is indexed exactly once.

Runs against a private node (`agg-pause` on port 9210, env LOGSHIP_TEST_AGG_PAUSE_PORT) because it
freezes it. The pause lasts LOGSHIP_TEST_PAUSE_SECONDS (default 10).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from opensearchpy import AsyncOpenSearch

from aggregator.app import Aggregator
from logship.lumberjack.client import LumberjackClient
from logship.lumberjack.codec import AckDecoder, encode_window
from tests.conftest import OPENSEARCH_SCRIPT, delete_indices
from tests.integration.test_aggregator_opensearch import counts, make_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "agg-pause"
PORT = os.environ.get("LOGSHIP_TEST_AGG_PAUSE_PORT", "9210")
PAUSE = float(os.environ.get("LOGSHIP_TEST_PAUSE_SECONDS", "10"))


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(OPENSEARCH_SCRIPT), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def private_node() -> Iterator[tuple[str, int]]:
    started = _script("status", "--name", NAME).returncode != 0
    if started:
        proc = _script("start", "--name", NAME, "--port", PORT)
        if proc.returncode != 0:
            pytest.fail(f"cannot start a private OpenSearch node:\n{proc.stdout}\n{proc.stderr}")
    url = _script("url", "--name", NAME).stdout.strip()
    pid = int(_script("pid", "--name", NAME).stdout.strip())
    try:
        yield url, pid
    finally:
        os.kill(pid, signal.SIGCONT)  # never leave it frozen, whatever happened
        if started:
            _script("stop", "--name", NAME)


def events(tag: str, start: int, n: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "@timestamp": "2026-02-02T00:00:00.000Z",
                "message": f"{tag} {i}",
                "tags": ["app"],
                "@metadata": {"_id": f"{tag}-{i}"},
            }
        )
        for i in range(start, start + n)
    ]


async def test_opensearch_paused_then_resumed_loses_nothing(private_node: tuple[str, int], tmp_path: Path) -> None:
    url, pid = private_node
    prefix = f"t-pause-{os.getpid()}-"
    cfg = make_config(
        url,
        prefix,
        tmp_path,
        listen={"host": "127.0.0.1", "port": 0, "keepalive_interval": "500ms"},
        opensearch={"hosts": [url], "timeout": "3s"},
        bulk={"max_docs": 300, "backoff": {"initial": "200ms", "max": "2s"}},
    )
    agg = Aggregator(cfg)
    await agg.start(setup_indices=False)
    client_os = AsyncOpenSearch(hosts=[url], timeout=30)
    acked_at: list[float] = []
    sent = 0
    stop_streaming = asyncio.Event()
    going = asyncio.Event()

    async def stream(n: int) -> None:
        nonlocal sent
        client = LumberjackClient([f"127.0.0.1:{agg.server.port}"], compression_level=1, timeout=60)
        i = 0
        try:
            while not stop_streaming.is_set():
                await client.send(events(f"s{n}", i, 100))
                acked_at.append(time.monotonic())
                if len(acked_at) >= 6:
                    going.set()
                sent += 100
                i += 100
        finally:
            await client.close()

    try:
        streams = [asyncio.create_task(stream(n)) for n in range(3)]
        # the first bulk creates the index: slow on a busy machine
        await asyncio.wait_for(going.wait(), 60)

        os.kill(pid, signal.SIGSTOP)
        paused_at = time.monotonic()
        # A raw connection shows what a shipper sees: keepalive acks (seq 0) and no real ack.
        reader, writer = await asyncio.open_connection("127.0.0.1", agg.server.port)
        writer.write(encode_window(events("probe", 0, 10)))
        await writer.drain()
        acks: list[tuple[float, int]] = []
        decoder = AckDecoder()

        async def read_acks() -> None:
            while True:
                data = await reader.read(64)
                if not data:
                    return
                for seq in decoder.feed(data):
                    acks.append((time.monotonic(), seq))
                    if seq == 10:
                        return

        probe = asyncio.create_task(read_acks())
        await asyncio.sleep(PAUSE)
        resumed_at = time.monotonic()
        os.kill(pid, signal.SIGCONT)

        # Replies already on their way at SIGSTOP may still complete a window in the first moments.
        during = [t for t in acked_at if paused_at + 2.0 < t < resumed_at]
        assert during == [], f"{len(during)} windows acked while OpenSearch was frozen"
        keepalives = [seq for t, seq in acks if t < resumed_at]
        assert keepalives and set(keepalives) == {0}, acks
        assert len(keepalives) >= int(PAUSE / 0.5) - 2

        await asyncio.wait_for(probe, 60)
        assert acks[-1][1] == 10 and acks[-1][0] >= resumed_at
        writer.close()

        await asyncio.sleep(2.0)  # the stream flows again
        after = [t for t in acked_at if t > resumed_at]
        assert after, "nothing acknowledged after OpenSearch resumed"
        stop_streaming.set()
        await asyncio.wait_for(asyncio.gather(*streams), 60)

        got = await counts(client_os, prefix)
        assert got == {f"{prefix}app-2026.02.02": sent + 10}
        assert agg.metrics.retried.labels("connection")._value.get() > 0
        assert agg.metrics.dead_lettered._value.get() == 0
    finally:
        os.kill(pid, signal.SIGCONT)
        stop_streaming.set()
        await agg.shutdown()
        await client_os.close()
        delete_indices(url, f"{prefix}*")
