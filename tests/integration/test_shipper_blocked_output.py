"""Losing nothing while the output is blocked: files found, held and read after the outage, shutdown
under backpressure, restarts that find rotated generations by identity, and every loss counted.

Real files rotated the way kubelet and logrotate rotate them, a real Lumberjack server on loopback that
starts late or acknowledges slowly, and the shipper's own registry and metrics.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
from pathlib import Path

import pytest

from shipper.app import Shipper
from shipper.config import ShipperConfig
from shipper.registry import RegistryFile
from tests.integration.test_shipper_support import (
    Collector,
    PodLog,
    RunningShipper,
    append,
    config,
    cri,
    docker,
    free_port,
    wait_until,
)

pytestmark = pytest.mark.parametrize("watch", ["inotify", "poll"])


def app_lines(prefix: str, n: int) -> bytes:
    return b"".join(f"2026-01-01 12:00:00 {prefix}-{i}\n".encode() for i in range(n))


def lost(shipper: Shipper, reason: str) -> float:
    return shipper.metrics.bytes_lost.labels(reason)._value.get()


def kubelet_rotate(pod: PodLog, n: int) -> Path:
    """0.log -> 0.log.<n>, a new 0.log; the previous rotated generation is gzipped (plain removed)."""
    for plain in sorted(pod.dir.glob("0.log.2026*[0-9]")):
        with open(plain, "rb") as src, gzip.open(f"{plain}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        plain.unlink()
    rotated = pod.dir / f"0.log.20260101-1200{n:02d}"
    os.rename(pod.file, rotated)
    pod.file.touch()
    return rotated


def copytruncate(path: Path) -> None:
    shutil.copyfile(path, path.with_name(path.name + ".1"))
    with open(path, "r+b") as f:
        f.truncate(0)


def messages(c: Collector) -> list[str]:
    return sorted(e["message"] for e in c.events)


async def test_files_rotated_and_truncated_during_an_outage_are_all_read_after_it(tmp_path: Path, watch: str) -> None:
    port = free_port()
    cfg = config(
        tmp_path,
        port,
        watch=watch,
        inputs=[
            {"type": "containers", "paths": [str(tmp_path / "var/log/containers/*.log")]},
            {"type": "app", "paths": [str(tmp_path / "app/logs/log-*.log")]},
        ],
    )
    pods = [PodLog(tmp_path, pod=f"web-{i}") for i in range(3)]
    app = tmp_path / "app/logs/log-2026-01-01.log"
    expected: list[str] = []
    async with RunningShipper(cfg) as shipper:
        for gen in range(4):  # no aggregator: four generations of every file come and go
            for i, pod in enumerate(pods):
                text = [f"pod{i}-gen{gen}-{k}" for k in range(30)]
                pod.append(b"".join(cri(t) if i % 2 else docker(t + "\n") for t in text))
                expected += text
            append(app, app_lines(f"app-gen{gen}", 20))
            expected += [f"2026-01-01 12:00:00 app-gen{gen}-{k}" for k in range(20)]
            await asyncio.sleep(0.5)  # discovery sees the files while sending is blocked
            for pod in pods:
                kubelet_rotate(pod, gen)
            copytruncate(app)
            await asyncio.sleep(0.5)
        assert shipper.sender.in_flight + shipper.sender.queued > 0, "the output was not blocked"
        collector = Collector()
        await collector.start(port)
        try:
            await wait_until(lambda: len(collector.events) >= len(expected), within=60)
            await asyncio.sleep(0.5)
            assert messages(collector) == sorted(expected)
            assert len({e["@metadata"]["_id"] for e in collector.events}) == len(expected)
            for reason in ("truncated", "not_found", "deleted_before_open", "deleted_bytes_cap", "open_files_cap"):
                assert lost(shipper, reason) == 0, reason
        finally:
            await collector.close()


@pytest.mark.parametrize("stop_after_windows", [1, 2, 3])
async def test_sigterm_while_blocked_never_moves_a_checkpoint_past_an_unsent_line(
    tmp_path: Path, watch: str, stop_after_windows: int
) -> None:
    """7 lines, windows of 2, one window in flight, a slow aggregator: stop at several points."""
    collector = Collector(delay=1.5)
    port = await collector.start()
    cfg = config(
        tmp_path,
        port,
        watch=watch,
        inputs=[{"type": "app", "paths": [str(tmp_path / "app/logs/log-*.log")]}],
        output={"window_size": 2, "max_pending_windows": 1, "queue_windows": 1},
        shutdown_timeout="1s",
    )
    app = tmp_path / "app/logs/log-2026-01-01.log"
    data = app_lines("x", 7)
    append(app, data)
    ends = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
    try:
        async with RunningShipper(cfg):
            await wait_until(lambda: len(collector._windows) >= stop_after_windows, within=20)
        entry = next(iter(RegistryFile(cfg.registry.path).load().entries.values()))
        delivered = [e["message"] for e in collector.events]
        # every line below the checkpoint reached the aggregator, in order
        below = sum(1 for end in ends if end <= entry.offset)
        assert entry.offset in (0, *ends)
        assert delivered[:below] == [f"2026-01-01 12:00:00 x-{k}" for k in range(below)]
        # the rest is read again at the next start; nothing is lost
        collector.delay = 0.0
        async with RunningShipper(cfg):
            await wait_until(
                lambda: {e["message"] for e in collector.events} >= {f"2026-01-01 12:00:00 x-{k}" for k in range(7)}
            )
    finally:
        await collector.close()


async def test_a_restart_finds_rotated_and_compressed_generations_by_identity(tmp_path: Path, watch: str) -> None:
    port = free_port()
    cfg = config(tmp_path, port, watch=watch)
    pod = PodLog(tmp_path)
    app = tmp_path / "app/logs/log-2026-01-01.log"
    first = [f"before-{k}" for k in range(40)]
    pod.append(b"".join(docker(t + "\n") for t in first))
    append(app, app_lines("before", 10))
    async with RunningShipper(cfg) as shipper:
        await wait_until(
            lambda: (
                all(e.fp_len > 0 for e in shipper.checkpoints.entries.values())
                and len(shipper.checkpoints.entries) == 2
            )
        )
        await asyncio.sleep(0.3)  # registry flushed
    # while the shipper is down: kubelet rotates twice (the first generation ends up gzipped), logrotate
    # copytruncates the app log, and more is written everywhere
    kubelet_rotate(pod, 1)
    middle = [f"middle-{k}" for k in range(25)]
    pod.append(b"".join(docker(t + "\n") for t in middle))
    kubelet_rotate(pod, 2)
    assert not (pod.dir / "0.log.20260101-120001").exists() and (pod.dir / "0.log.20260101-120001.gz").exists()
    last = [f"after-{k}" for k in range(5)]
    pod.append(b"".join(docker(t + "\n") for t in last))
    copytruncate(app)
    append(app, app_lines("after", 3))
    collector = Collector()
    await collector.start(port)
    try:
        async with RunningShipper(cfg) as shipper:
            want = sorted(first + middle + last) + sorted(
                [f"2026-01-01 12:00:00 before-{k}" for k in range(10)]
                + [f"2026-01-01 12:00:00 after-{k}" for k in range(3)]
            )
            await wait_until(lambda: len(collector.events) >= len(want), within=30)
            await asyncio.sleep(0.5)
            got = messages(collector)
            assert sorted(got) == sorted(want)
            assert lost(shipper, "not_found") == 0
    finally:
        await collector.close()


async def test_what_cannot_be_read_is_counted_with_its_reason(
    tmp_path: Path, watch: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    # small windows, one in flight, one queued: the reader stops early, so most bytes stay unread
    cfg = config(
        tmp_path,
        port,
        watch=watch,
        max_deleted_bytes_held=1000,
        read_buffer_bytes=4096,
        output={"window_size": 2, "max_pending_windows": 1, "queue_windows": 1},
    )
    pods = [PodLog(tmp_path, pod=f"p{i}") for i in range(3)]
    for pod in pods:
        pod.append(b"".join(docker(f"{pod.link.name}-{k}\n") for k in range(300)))
    app = tmp_path / "app/logs/log-2026-01-01.log"
    append(app, app_lines("gone", 300))
    async with RunningShipper(cfg) as shipper:
        await wait_until(lambda: len(shipper.tailer.harvesters) == 4)
        # deleted while sending is blocked: held, until held deleted bytes pass the cap
        deleted = pods[0].file.stat().st_size
        pods[0].file.unlink()
        pods[0].link.unlink()
        # truncated with no copy left: the unread bytes are gone
        truncated = app.stat().st_size
        os.truncate(app, 0)
        await wait_until(lambda: lost(shipper, "deleted_bytes_cap") > 0 and lost(shipper, "truncated") > 0)
        lost_deleted = int(lost(shipper, "deleted_bytes_cap"))
        lost_truncated = int(lost(shipper, "truncated"))
        assert 0 < lost_deleted <= deleted and 0 < lost_truncated <= truncated
    # not found after a restart: a registered file removed while the shipper was down
    gone = pods[1].file.stat().st_size
    pods[1].file.unlink()
    pods[1].link.unlink()
    shipper2 = Shipper(cfg)
    task = asyncio.create_task(shipper2.run())
    try:
        # what the first run had read but not sent is lost now too: every byte is counted once
        expect = gone + (deleted - lost_deleted) + (truncated - lost_truncated)
        await wait_until(lambda: lost(shipper2, "not_found") >= expect, within=5)
        await asyncio.sleep(0.5)
        assert lost(shipper2, "not_found") == expect
    finally:
        shipper2.stop()
        assert await asyncio.wait_for(task, 20) == 0
    text = caplog.text
    # each loss is logged with the path and the exact byte range counted
    assert f"{pods[0].link}: bytes {deleted - lost_deleted}-{deleted} could not be read (deleted_bytes_cap)" in text
    assert f"{app}: bytes {truncated - lost_truncated}-{truncated} could not be read (truncated)" in text
    assert f"{pods[1].link}: bytes 0-{gone} could not be read (not_found)" in text
    # a loss is reported once: a third start does not count it again
    shipper3 = Shipper(cfg)
    task = asyncio.create_task(shipper3.run())
    await asyncio.sleep(1.0)
    shipper3.stop()
    assert await asyncio.wait_for(task, 20) == 0
    assert lost(shipper3, "not_found") == 0


async def test_files_over_max_open_files_wait_registered_and_are_read_in_turn(tmp_path: Path, watch: str) -> None:
    """max_open_files 1: the other files wait, registered, and are read when the handle is free."""
    port = free_port()
    collector = Collector()
    await collector.start(port)
    cfg: ShipperConfig = config(tmp_path, port, watch=watch, max_open_files=1, close_inactive="300ms")
    pods = [PodLog(tmp_path, pod=f"c{i}") for i in range(3)]
    want = []
    for pod in pods:
        text = [f"{pod.link.name}-{k}" for k in range(10)]
        pod.append(b"".join(docker(t + "\n") for t in text))
        want += text
    try:
        async with RunningShipper(cfg) as shipper:
            await wait_until(lambda: len(collector.events) >= len(want), within=30)
            assert messages(collector) == sorted(want)
            assert len(shipper.tailer.harvesters) <= 1
    finally:
        await collector.close()
