"""The `logship` command and the ops endpoint, as a user meets them."""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, generate_latest

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


def test_version_option_and_global_options_after_the_subcommand(tmp_path: Path) -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith(f"logship {__version__} ")
    cfg = tmp_path / "s.yml"
    cfg.write_text("shipper: {}\n")
    after = run_cli("test", "config", "-c", str(cfg), "--log-level", "debug", "--log-format", "json")
    before = run_cli("--log-level", "warning", "test", "config", "-c", str(cfg))
    assert after.returncode == before.returncode == 0
    assert after.stdout == before.stdout == f"{cfg}: shipper: config OK\n"


def test_every_option_has_help_text() -> None:
    from logship.cli import build_parser

    parser = build_parser()
    seen = 0

    def walk(p: Any) -> None:
        nonlocal seen
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    if name != "loggen":
                        walk(child)
            elif action.option_strings:
                seen += 1
                assert action.help, f"{p.prog} {action.option_strings} has no help text"
        assert p.description, f"{p.prog} has no description"

    walk(parser)
    assert seen > 15


def test_test_output_failure_is_a_few_clear_lines(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agg = tmp_path / "a.yml"
    agg.write_text(f"aggregator:\n  opensearch: {{hosts: ['http://127.0.0.1:{port}']}}\n")
    out = run_cli("test", "output", "-c", str(agg))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 2, out.stderr
    assert "cannot reach OpenSearch" in out.stderr
    ship = tmp_path / "s.yml"
    ship.write_text(f"shipper:\n  output: {{hosts: ['127.0.0.1:{port}']}}\n")
    out = run_cli("test", "output", "-c", str(ship))
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    assert f"127.0.0.1:{port}: FAILED" in out.stdout


def test_unexpected_error_is_two_lines_and_a_traceback_only_with_debug(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yml"
    # an HTTP listen address that does not resolve: the shipper cannot start
    cfg.write_text(
        f"shipper:\n  registry: {{path: '{tmp_path}/reg/registry.json'}}\n"
        f"  inputs: [{{type: app, paths: ['{tmp_path}/none/*.log']}}]\n  http: {{host: '256.1.1.1', port: 0}}\n"
        "  output: {hosts: ['127.0.0.1:1']}\n"
    )
    out = run_cli("--log-format", "json", "shipper", "-c", str(cfg))
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if not line.startswith("{")]
    assert "Traceback" not in out.stderr and 1 <= len(errors) <= 2, out.stderr
    debug = run_cli("shipper", "-c", str(cfg), "--log-level", "debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


async def test_ops_server_head_has_no_body_and_bad_requests_get_400() -> None:
    registry = CollectorRegistry()
    Counter("sample_events", "events seen", registry=registry).inc()
    server = OpsServer(registry, host="127.0.0.1", port=0)
    await server.start()

    async def raw(request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        await writer.drain()
        data = await reader.read()
        writer.close()
        return data

    try:
        head = await raw(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        get = await raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        assert length > 0 and len(get.split(b"\r\n\r\n", 1)[1]) == length
        assert (await raw(b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 Bad Request")
        assert (await raw(b"GET x HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        post = await raw(b"POST /metrics HTTP/1.1\r\n\r\n")
        assert post.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in post
    finally:
        await server.close()


def test_file_bytes_behind_is_bounded() -> None:
    from shipper.metrics import TOP_FILES_BEHIND, ShipperMetrics

    metrics = ShipperMetrics()
    files = [(f"/var/log/containers/p{i}.log", i) for i in range(1000)]
    metrics.watch_files(lambda: files)
    body = generate_latest(metrics.registry).decode()
    series = [line for line in body.splitlines() if line.startswith("logship_shipper_file_bytes_behind{")]
    assert len(series) == TOP_FILES_BEHIND
    assert 'logship_shipper_file_bytes_behind{path="/var/log/containers/p999.log"} 999.0' in series
    assert f"logship_shipper_bytes_behind {float(sum(range(1000)))}" in body
    assert "logship_shipper_files_behind 999.0" in body


def test_demo_outside_a_checkout_says_so(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    """An installed wheel has logship.demo but not deploy/local or scripts/: one clear line, exit 2."""
    from logship.demo import main as demo_main

    monkeypatch.setattr(demo_main, "LOCAL_CONFIGS", tmp_path / "deploy" / "local")
    assert demo_main.main([]) == 2
    err = capsys.readouterr().err
    assert "needs a source checkout" in err and "make demo" in err and len(err.splitlines()) == 1
