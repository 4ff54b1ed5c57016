"""The real `logship shipper` process: SIGKILL at random points, no aggregator at start, slow
aggregator with flat memory, SIGTERM, `logship test output`, `logship test config`."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from shipper.registry import RegistryFile
from tests.integration.test_shipper_support import (
    Collector,
    PodLog,
    append,
    docker,
    free_port,
    wait_until,
)

LOGSHIP = str(Path(sys.executable).with_name("logship"))
NO_AGGREGATOR_SECONDS = float(os.environ.get("LOGSHIP_TEST_NO_AGGREGATOR_SECONDS", "30"))


def write_config(tmp_path: Path, port: int, **over: Any) -> Path:
    doc: dict[str, Any] = {
        "name": "node-proc",
        "inputs": [
            {"type": "containers", "paths": [str(tmp_path / "var/log/containers/*.log")]},
            {"type": "app", "paths": [str(tmp_path / "app/logs/log-*.log")]},
        ],
        "scan_interval": "250ms",
        "registry": {"path": str(tmp_path / "registry.json"), "flush_interval": "100ms"},
        "output": {
            "hosts": [f"127.0.0.1:{port}"],
            "window_size": 200,
            "max_pending_windows": 2,
            "backoff": {"initial": "100ms", "max": "1s"},
            "timeout": "10s",
        },
        "http": {"host": "127.0.0.1", "port": free_port()},
        "shutdown_timeout": "10s",
    }
    for k, v in over.items():
        doc[k] = {**doc[k], **v} if isinstance(v, dict) and isinstance(doc.get(k), dict) else v
    path = tmp_path / "shipper.yml"
    path.write_text(yaml.safe_dump({"shipper": doc}))
    return path


def start(cfg: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    log = open(tmp_path / "shipper.log", "ab")
    return subprocess.Popen([LOGSHIP, "shipper", "-c", str(cfg)], stdout=log, stderr=log)


async def wait_up(cfg: Path, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the process serves /healthz (its signal handlers are installed by then)."""
    import urllib.request

    port = _http_port(cfg)
    for _ in range(300):
        assert proc.poll() is None, "the shipper exited"
        try:
            await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("the shipper did not come up")


async def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Signal the shipper and wait for it without blocking this loop (the collector runs in it)."""
    proc.send_signal(sig)
    return await asyncio.to_thread(proc.wait, 30)


class EpochCollector(Collector):
    """Remembers in which run of the shipper each event arrived."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self.epoch = 0
        self._epochs: list[list[int]] = []  # per window, in arrival order like Collector.events

    @property
    def epochs(self) -> list[int]:
        return [e for w in self._epochs for e in w]

    async def handler(self, batch: Any) -> None:
        slot: list[int] = []
        self._epochs.append(slot)
        epoch = self.epoch
        await super().handler(batch)
        slot.extend([epoch] * len(batch.events))


async def test_sigkill_at_random_points_loses_nothing_and_resends_same_ids(tmp_path: Path) -> None:
    rnd = random.Random(int(os.environ.get("LOGSHIP_TEST_SEED", str(time.time_ns()))))
    collector = EpochCollector()
    port = await collector.start()
    cfg = write_config(tmp_path, port)
    pods = [PodLog(tmp_path, f"pod-{i}", "ns", "c") for i in range(2)]
    apps = [tmp_path / f"app/logs/log-2026-01-0{i + 1}.log" for i in range(2)]
    written: set[tuple[str, str]] = set()
    stop_writing = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop_writing.is_set():
            for pod in pods:
                pod.append(b"".join(docker(f"{pod.link.name} line {n + i}\n") for i in range(50)))
                written.update((str(pod.link), f"{pod.link.name} line {n + i}") for i in range(50))
            for app in apps:
                append(app, b"".join(f"{app.name} line {n + i}\n".encode() for i in range(50)))
                written.update((str(app), f"{app.name} line {n + i}") for i in range(50))
            n += 50
            await asyncio.sleep(0.02)

    checkpoints_at_kill: list[dict[str, int]] = []
    writing = asyncio.create_task(writer())
    try:
        for epoch in range(5):
            collector.epoch = epoch
            proc = start(cfg, tmp_path)
            await asyncio.sleep(rnd.uniform(0.5, 2.0))
            assert await stop(proc, signal.SIGKILL) == -signal.SIGKILL
            regs = RegistryFile(tmp_path / "registry.json").load().entries.values()
            checkpoints_at_kill.append({e.path: e.offset for e in regs})
        stop_writing.set()
        await writing
        collector.epoch = 5
        proc = start(cfg, tmp_path)
        await wait_up(cfg, proc)
        await wait_until(lambda: {(e["log"]["file"]["path"], e["message"]) for e in collector.events} >= written, 60)
        assert await stop(proc) == 0
    finally:
        stop_writing.set()
        await collector.close()

    received = {(e["log"]["file"]["path"], e["message"]) for e in collector.events}
    assert received == written, "lines lost or invented"
    # a resent event carries the same id: one id per (file, offset) and one (file, offset) per id
    by_pos: dict[tuple[str, int], set[str]] = {}
    by_id: dict[str, set[tuple[str, int]]] = {}
    for e in collector.events:
        pos = (e["log"]["file"]["path"], e["log"]["offset"])
        by_pos.setdefault(pos, set()).add(e["@metadata"]["_id"])
        by_id.setdefault(e["@metadata"]["_id"], set()).add(pos)
    assert all(len(v) == 1 for v in by_pos.values())
    assert all(len(v) == 1 for v in by_id.values())
    # only what was not checkpointed is resent: after kill k, the next run sends nothing below the
    # checkpoint the registry held at the kill (and that checkpoint only covers acknowledged events)
    for e, epoch in zip(collector.events, collector.epochs, strict=True):
        if epoch == 0:
            continue
        floor = checkpoints_at_kill[epoch - 1].get(e["log"]["file"]["path"], 0)
        assert e["log"]["offset"] >= floor, "an acknowledged and checkpointed event was sent again"
    first_receipt: dict[tuple[str, int], int] = {}
    for e, epoch in zip(collector.events, collector.epochs, strict=True):
        first_receipt.setdefault((e["log"]["file"]["path"], e["log"]["offset"]), epoch)
    for k, cps in enumerate(checkpoints_at_kill):
        for path, offset in cps.items():
            below = [p for p in first_receipt if p[0] == path and p[1] < offset]
            assert all(first_receipt[p] <= k for p in below), "checkpoint passed an unacknowledged event"
    resent = len(collector.events) - len(by_pos)
    print(f"events received {len(collector.events)}, distinct {len(by_pos)}, resent after kills {resent}")


async def test_no_aggregator_at_start_then_everything_arrives(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, port)
    pod = PodLog(tmp_path)
    pod.append(b"".join(docker(f"early {i}\n") for i in range(1000)))
    proc = start(cfg, tmp_path)
    collector = Collector()
    try:
        await asyncio.sleep(NO_AGGREGATOR_SECONDS / 2)
        pod.append(b"".join(docker(f"while down {i}\n") for i in range(1000)))
        await asyncio.sleep(NO_AGGREGATOR_SECONDS / 2)
        assert proc.poll() is None, "the shipper gave up while no aggregator was reachable"
        await collector.start(port)
        await wait_until(lambda: len(collector.events) >= 2000, 30)
        assert await stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await collector.close()
    assert collector.messages() == [f"early {i}" for i in range(1000)] + [f"while down {i}" for i in range(1000)]


async def test_slow_aggregator_keeps_memory_flat(tmp_path: Path) -> None:
    collector = Collector(delay=0.05)
    port = await collector.start()
    cfg = write_config(tmp_path, port, output={"window_size": 500, "max_pending_windows": 2})
    pod = PodLog(tmp_path)
    line = "x" * 200
    total = 150_000
    pod.append(b"".join(docker(f"{i:06d} {line}\n") for i in range(total)))  # ~38 MB backlog
    size = pod.file.stat().st_size
    proc = start(cfg, tmp_path)
    try:
        ps = psutil.Process(proc.pid)
        await wait_until(lambda: len(collector.events) >= 2000, 20)
        base = ps.memory_info().rss
        samples = []
        for _ in range(20):
            await asyncio.sleep(0.25)
            samples.append(ps.memory_info().rss)
        behind = size - _metric(cfg, "logship_shipper_bytes_read_total")
        assert len(collector.events) < total / 2, "the aggregator was not slow enough to test back-pressure"
        assert behind > size / 2, "the shipper kept reading although acks lagged"
        growth = max(samples) - base
        print(f"RSS base {base / 2**20:.1f} MiB, max {max(samples) / 2**20:.1f} MiB, backlog {behind / 2**20:.1f} MiB")
        assert growth < 16 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB while the aggregator was slow"
        assert max(samples) < 128 * 2**20
        collector.delay = 0.0
        await wait_until(lambda: len(collector.events) >= total, 120)
        assert await stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await collector.close()
    assert [int(m[:6]) for m in collector.messages()] == list(range(total))


def _http_port(cfg: Path) -> int:
    return int(yaml.safe_load(cfg.read_text())["shipper"]["http"]["port"])


def _metric(cfg: Path, name: str) -> float:
    import urllib.request

    port = _http_port(cfg)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_cli_test_output_and_test_config(tmp_path: Path) -> None:
    collector = Collector()
    port = await collector.start()
    try:
        cfg = write_config(tmp_path, port)
        ok = await asyncio.to_thread(
            subprocess.run, [LOGSHIP, "test", "output", "-c", str(cfg)], capture_output=True, text=True
        )
        assert ok.returncode == 0 and f"127.0.0.1:{port}: connection OK" in ok.stdout
        dead = write_config(tmp_path, free_port())
        bad = await asyncio.to_thread(
            subprocess.run, [LOGSHIP, "test", "output", "-c", str(dead)], capture_output=True, text=True
        )
        assert bad.returncode == 1 and "FAILED" in bad.stdout
    finally:
        await collector.close()
    doc = yaml.safe_load(cfg.read_text())
    doc["shipper"]["output"]["windw_size"] = 5
    doc["shipper"]["inputs"][0]["type"] = "journald"
    cfg.write_text(yaml.safe_dump(doc))
    res = await asyncio.to_thread(
        subprocess.run, [LOGSHIP, "test", "config", "-c", str(cfg)], capture_output=True, text=True
    )
    assert res.returncode == 2
    assert "shipper.output.windw_size: unknown key" in res.stderr
    assert "shipper.inputs[0].type" in res.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM])
async def test_sigterm_flushes_and_writes_registry(tmp_path: Path, sig: int) -> None:
    collector = Collector(delay=0.2)
    port = await collector.start()
    cfg = write_config(tmp_path, port)
    pod = PodLog(tmp_path)
    pod.append(b"".join(docker(f"m{i}\n") for i in range(300)))
    proc = start(cfg, tmp_path)
    try:
        await wait_up(cfg, proc)
        await wait_until(lambda: len(collector.events) >= 1, 20)
        assert await stop(proc, sig) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await collector.close()
    entries = RegistryFile(tmp_path / "registry.json").load().entries
    (entry,) = entries.values()
    # the registry holds exactly what was acknowledged: the resume point of the last received event
    assert entry.offset > 0
    received = [e["log"]["offset"] for e in collector.events]
    assert entry.offset > max(received)
    assert entry.offset <= pod.file.stat().st_size


async def test_sigterm_while_no_aggregator_exits_within_shutdown_timeout(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, free_port(), shutdown_timeout="2s")
    pod = PodLog(tmp_path)
    pod.append(b"".join(docker(f"m{i}\n") for i in range(2000)))  # more than the windows in flight
    proc = start(cfg, tmp_path)
    try:
        await wait_up(cfg, proc)
        await asyncio.sleep(1.0)
        began = time.monotonic()
        assert await stop(proc) == 0
        assert time.monotonic() - began < 2.0 + 3.0
    finally:
        if proc.poll() is None:
            proc.kill()
    # nothing was acknowledged, so nothing is checkpointed past the start
    entries = RegistryFile(tmp_path / "registry.json").load().entries
    assert all(e.offset == 0 for e in entries.values())
