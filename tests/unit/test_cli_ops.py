"""The `logship` command and the ops endpoint, as a user meets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from logship import __version__
from logship.ops import OpsServer


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logship", *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    out = run_cli("version")
    assert out.returncode == 0
    assert out.stdout.startswith(f"logship {__version__} ")


def test_test_config_without_sections_fails_with_a_named_file(tmp_path: Path) -> None:
    cfg = tmp_path / "empty.yml"
    cfg.write_text("{}\n")
    out = run_cli("test", "config", "-c", str(cfg))
    assert out.returncode == 2
    assert f"{cfg}: no 'shipper:' or 'aggregator:' section" in out.stderr


def test_missing_config_file_exit_2(tmp_path: Path) -> None:
    out = run_cli("shipper", "-c", str(tmp_path / "nope.yml"))
    assert out.returncode == 2
    assert "config file not found" in out.stderr


async def test_ops_server_serves_metrics_and_probes() -> None:
    registry = CollectorRegistry()
    hits = Counter("sample_events", "events seen", registry=registry)
    hits.inc(3)
    ready_state = {"ok": False}

    async def ready() -> tuple[bool, str]:
        return ready_state["ok"], "ok" if ready_state["ok"] else "opensearch unreachable"

    server = OpsServer(registry, host="127.0.0.1", port=0, ready=ready)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                assert "sample_events_total 3.0" in await resp.text()
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 503
                assert "opensearch unreachable" in await resp.text()
            ready_state["ok"] = True
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200
    finally:
        await server.close()
