"""`logship aggregator` and `logship test output` as real processes against the real OpenSearch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
from opensearchpy import AsyncOpenSearch

from logship.lumberjack.client import LumberjackClient
from tests.integration.test_aggregator_opensearch import counts

pytestmark = pytest.mark.integration

LOGSHIP = [sys.executable, "-m", "logship"]
PASSWORD = "pw-Zq81-never-printed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, url: str, prefix: str, port: int, http_port: int, tmp: Path) -> Path:
    path.write_text(
        f"""
aggregator:
  listen: {{host: 127.0.0.1, port: {port}, keepalive_interval: 500ms}}
  routes:
    - {{tag: containers, index: "{prefix}containers-%{{+YYYY.MM.dd}}"}}
    - {{tag: app, index: "{prefix}app-%{{+YYYY.MM.dd}}"}}
  default_index: "{prefix}unrouted-%{{+YYYY.MM.dd}}"
  family_index: "{prefix}{{family}}-%{{+YYYY.MM.dd}}"
  opensearch:
    hosts: ["{url}"]
    username: logship
    password: ${{AGG_TEST_PASSWORD}}
  bulk: {{max_docs: 500, max_delay: 2s}}
  template: {{name: "{prefix}tmpl", shards: 1, replicas: 0}}
  dead_letter: {{path: "{tmp}/dlq.ndjson"}}
  http: {{host: 127.0.0.1, port: {http_port}}}
  shutdown_timeout: 15s
""",
        encoding="utf-8",
    )
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGG_TEST_PASSWORD": PASSWORD}
    return subprocess.run([*LOGSHIP, *args], capture_output=True, text=True, timeout=60, env=env)


def test_test_output_reports_version_and_template(opensearch_url: str, index_prefix: str, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "agg.yml", opensearch_url, index_prefix, free_port(), free_port(), tmp_path)
    proc = run_cli("test", "output", "-c", str(cfg))
    assert proc.returncode == 0, proc.stderr
    major = os.environ.get("LOGSHIP_TEST_OPENSEARCH_VERSION", "2.19").split(".")[0]
    assert f"connection... OK: opensearch {major}." in proc.stdout
    assert f"index template {index_prefix}tmpl ({index_prefix}*)... not installed" in proc.stdout
    assert PASSWORD not in proc.stdout + proc.stderr


def test_test_output_fails_clearly_without_opensearch(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "agg.yml", f"http://127.0.0.1:{free_port()}", "t-x-", 1, 2, tmp_path)
    proc = run_cli("test", "output", "-c", str(cfg))
    assert proc.returncode == 1
    assert "cannot reach OpenSearch" in proc.stderr
    assert "aggregator.opensearch.hosts" in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr


def start_aggregator(cfg: Path, stderr_path: Path) -> subprocess.Popen[bytes]:
    with open(stderr_path, "wb") as err:
        return subprocess.Popen(
            [*LOGSHIP, "aggregator", "-c", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "AGG_TEST_PASSWORD": PASSWORD},
        )


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(5)) as r:
        return r.status, await r.text()


async def test_cli_serves_then_sigterm_flushes_and_acks(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    port, http_port = free_port(), free_port()
    cfg = write_config(tmp_path / "agg.yml", opensearch_url, index_prefix, port, http_port, tmp_path)
    stderr_path = tmp_path / "stderr.log"
    proc = start_aggregator(cfg, stderr_path)
    clients: list[LumberjackClient] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = await _get(f"http://127.0.0.1:{http_port}/readyz")
                if status == 200:
                    break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, stderr_path.read_text()
            await asyncio.sleep(0.2)

        acked: list[str] = []
        sent: set[str] = set()

        async def ship(n: int) -> None:
            client = LumberjackClient([f"127.0.0.1:{port}"], compression_level=3, timeout=30, backoff_max=1)
            clients.append(client)
            i = 0
            while True:
                ids = [f"c{n}-{j}" for j in range(i, i + 200)]
                sent.update(ids)
                await client.send(
                    [
                        orjson.dumps(
                            {
                                "@timestamp": "2026-02-03T00:00:00Z",
                                "message": x,
                                "tags": ["containers"],
                                "@metadata": {"_id": x},
                            }
                        )
                        for x in ids
                    ]
                )
                acked.extend(ids)
                first_ack.set()
                i += 200

        first_ack = asyncio.Event()
        shippers = [asyncio.create_task(ship(n)) for n in range(4)]
        # serving: windows are acked (the first bulk also creates the index, slow on a busy machine)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_ack.wait(), 30)
        await asyncio.sleep(0.5)  # more windows in flight when SIGTERM comes
        status, metrics = await _get(f"http://127.0.0.1:{http_port}/metrics")
        assert status == 200 and "logship_aggregator_events_in_total" in metrics
        assert acked, stderr_path.read_text()

        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
        assert rc == 0, stderr_path.read_text()
        assert time.monotonic() - started < 15
        acked_now = set(acked)
        for s in shippers:
            s.cancel()
        await asyncio.gather(*shippers, return_exceptions=True)

        index = f"{index_prefix}containers-2026.02.03"
        got = await counts(os_client, index_prefix)
        assert acked_now, "nothing acknowledged"
        assert len(acked_now) <= got[index] <= len(sent)  # every acked event indexed, never duplicated
        found = await os_client.mget(index=index, body={"ids": sorted(acked_now)}, _source=False)
        missing = [d["_id"] for d in found["docs"] if not d.get("found")]
        assert missing == []
        assert await os_client.indices.exists_index_template(name=f"{index_prefix}tmpl")
        log = stderr_path.read_text()
        assert "shutting down" in log and "aggregator stopped" in log
        assert PASSWORD not in log

        out = run_cli("test", "output", "-c", str(cfg))
        assert f"index template {index_prefix}tmpl ({index_prefix}*)... installed" in out.stdout
    finally:
        for c in clients:
            await c.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await os_client.indices.delete_index_template(name=f"{index_prefix}tmpl", ignore=[404])
