"""Shipper tailing real files into a real LumberjackServer on loopback: formats, metadata, checkpoints.

Every test runs with inotify and with polling.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import orjson
import pytest

from shipper.registry import Checkpoints, RegistryFile
from tests.integration.test_shipper_support import (
    Collector,
    PodLog,
    RunningShipper,
    append,
    config,
    cri,
    docker,
    wait_until,
)

pytestmark = pytest.mark.parametrize("watch", ["inotify", "poll"])


@pytest.fixture
async def collector():  # type: ignore[no-untyped-def]
    c = Collector()
    await c.start()
    yield c
    await c.close()


async def test_docker_lines_with_metadata_and_16k_merge(tmp_path: Path, collector: Collector, watch: str) -> None:
    pod = PodLog(tmp_path, "web-7d4b9", "shop", "nginx")
    pod.append(docker("before start\n"))
    cfg = config(tmp_path, collector.server.port, watch=watch)  # type: ignore[union-attr]
    async with RunningShipper(cfg):
        await wait_until(lambda: len(collector.events) == 1)
        big = "x" * 16384
        pod.append(docker(big) + docker("to stderr\n", "stderr") + docker(big) + docker("tail\n"))
        pod.append(b'{"log": broken json\n' + docker("after bad\n"))
        await wait_until(lambda: len(collector.events) == 5)
    msgs = [e["message"] for e in collector.events]
    assert msgs == ["before start", "to stderr", big + big + "tail", '{"log": broken json', "after bad"]
    ev = collector.events[0]
    assert ev["kubernetes"] == {
        "pod": {"name": "web-7d4b9"},
        "namespace": "shop",
        "container": {"name": "nginx"},
        "node": {"name": "node-test"},
    }
    assert ev["container"] == {"id": pod.cid, "runtime": "docker"}
    assert ev["log"]["file"]["path"] == str(pod.link)
    assert ev["log"]["offset"] == 0
    assert ev["@timestamp"] == "2026-01-01T12:00:00.123Z"
    assert ev["tags"] == ["containers"] and ev["host"]["name"] == "node-test"
    assert ev["agent"]["type"] == "logship"
    assert collector.events[1]["stream"] == "stderr"
    assert collector.events[3]["log"]["flags"] == ["malformed_json"]
    ids = [e["@metadata"]["_id"] for e in collector.events]
    assert len(set(ids)) == len(ids)
    # registry: the file is checkpointed at its end
    entry = next(iter(RegistryFile(cfg.registry.path).load().entries.values()))
    assert entry.offset == pod.file.stat().st_size


async def test_cri_partials_and_unterminated_tail(tmp_path: Path, collector: Collector, watch: str) -> None:
    pod = PodLog(tmp_path, "api-0", "prod", "java")
    cfg = config(tmp_path, collector.server.port, watch=watch)  # type: ignore[union-attr]
    async with RunningShipper(cfg):
        pod.append(cri("part one ", tag="P") + cri("err line", "stderr") + cri("part two", tag="F"))
        pod.append(f"{T_} stdout F no newline yet".encode())
        await wait_until(lambda: len(collector.events) == 2)
        assert [e["message"] for e in collector.events] == ["err line", "part one part two"]
        assert collector.events[0]["container"]["runtime"] == "cri"
        pod.append(b" ... now\n")
        await wait_until(lambda: len(collector.events) == 3)
    assert collector.events[2]["message"] == "no newline yet ... now"


T_ = "2026-01-01T12:00:00.123456789Z"


async def test_app_multiline_timestamp_and_fields(tmp_path: Path, collector: Collector, watch: str) -> None:
    app = {
        "type": "app",
        "paths": [str(tmp_path / "app/logs/log-*.log")],
        "tags": ["app", "java"],
        "fields": {"team": "payments"},
        "multiline": {"start_pattern": r"^\d{4}-\d{2}-\d{2} ", "timeout": "300ms"},
        "timestamp": {"timezone": "Asia/Seoul"},
    }
    cfg = config(tmp_path, collector.server.port, watch=watch, inputs=[app])  # type: ignore[union-attr]
    log = tmp_path / "app/logs/log-2026-01-01.log"
    async with RunningShipper(cfg):
        append(log, b"2026-01-01 09:00:00.250 ERROR failed\njava.lang.IllegalStateException: x\n\tat a.B(B.java:1)\n")
        append(log, b"2026-01-01 09:00:01 INFO ok\n")
        # the second record is only flushed by the multiline timeout
        await wait_until(lambda: len(collector.events) == 2)
        # a new daily file is picked up
        append(tmp_path / "app/logs/log-2026-01-02.log", b"2026-01-02 00:00:00 INFO new day\n")
        await wait_until(lambda: len(collector.events) == 3)
    first, second, third = collector.events
    assert (
        first["message"]
        == "2026-01-01 09:00:00.250 ERROR failed\njava.lang.IllegalStateException: x\n\tat a.B(B.java:1)"
    )
    assert first["log"]["flags"] == ["multiline"]
    assert first["@timestamp"] == "2026-01-01T00:00:00.250Z"
    assert second["@timestamp"] == "2026-01-01T00:00:01.000Z"
    assert first["tags"] == ["app", "java"] and first["fields"] == {"team": "payments"}
    assert "kubernetes" not in first
    assert third["log"]["file"]["path"].endswith("log-2026-01-02.log")


async def test_restart_resumes_without_gaps_or_duplicates(tmp_path: Path, collector: Collector, watch: str) -> None:
    pod = PodLog(tmp_path)
    cfg = config(tmp_path, collector.server.port, watch=watch)  # type: ignore[union-attr]
    pod.append(b"".join(docker(f"a{i}\n") for i in range(250)))
    async with RunningShipper(cfg):
        await wait_until(lambda: len(collector.events) == 250)
    pod.append(b"".join(docker(f"b{i}\n") for i in range(250)))
    async with RunningShipper(cfg):
        await wait_until(lambda: len(collector.events) >= 500)
    assert [e["message"] for e in collector.events] == [f"a{i}" for i in range(250)] + [f"b{i}" for i in range(250)]


async def test_stop_waits_for_a_registry_write_still_in_its_thread(
    tmp_path: Path, collector: Collector, watch: str
) -> None:
    """On a slow disk, housekeeping's registry write (begun in a thread, with the last acked offsets)
    may still be running when the shipper stops: the stop waits for it, so the file has those offsets
    when the shipper says it stopped."""
    pod = PodLog(tmp_path)
    pod.append(b"".join(docker(f"line {i}\n") for i in range(120)))
    cfg = config(tmp_path, collector.server.port, watch=watch)  # type: ignore[union-attr]
    running = RunningShipper(cfg)
    registry = running.shipper.registry_file
    write, final = registry.write, threading.Event()
    size = pod.file.stat().st_size

    def slow_write(data: bytes) -> None:
        if any(e.offset == size for e in Checkpoints.from_bytes(data).entries.values()):
            final.set()  # the snapshot holding the last acked offset: let the stop come in meanwhile
            time.sleep(1.0)
        write(data)

    registry.write = slow_write  # type: ignore[method-assign]
    async with running:
        await wait_until(lambda: len(collector.events) == 120)
        await wait_until(final.is_set)
    entry = next(iter(RegistryFile(cfg.registry.path).load().entries.values()))
    assert entry.offset == size


async def test_bad_input_flagged_neighbours_intact(tmp_path: Path, collector: Collector, watch: str) -> None:
    app = {"type": "app", "paths": [str(tmp_path / "app/logs/log-*.log")]}
    cfg = config(tmp_path, collector.server.port, watch=watch, inputs=[app], max_event_bytes="4KiB")  # type: ignore[union-attr]
    log = tmp_path / "app/logs/log-x.log"
    async with RunningShipper(cfg):
        append(log, b"good 1\n" + b"bad \xff\xfe utf8\n" + b"L" * 10000 + b"\n" + b"good 2\n")
        await wait_until(lambda: len(collector.events) == 4)
    msgs = collector.events
    assert msgs[0]["message"] == "good 1" and "flags" not in msgs[0]["log"]
    assert msgs[1]["message"] == "bad \ufffd\ufffd utf8" and msgs[1]["log"]["flags"] == ["invalid_utf8"]
    assert msgs[2]["message"] == "L" * 4096 and msgs[2]["log"]["flags"] == ["truncated"]
    assert msgs[3]["message"] == "good 2"
    assert msgs[3]["log"]["offset"] == len(b"good 1\n" + b"bad \xff\xfe utf8\n") + 10001


async def test_gz_and_excluded_files_skipped(tmp_path: Path, collector: Collector, watch: str) -> None:
    app = {
        "type": "app",
        "paths": [str(tmp_path / "app/logs/log-*")],
        "exclude": [str(tmp_path / "app/logs/log-skip*")],
    }
    cfg = config(tmp_path, collector.server.port, watch=watch, inputs=[app])  # type: ignore[union-attr]
    append(tmp_path / "app/logs/log-old.log.gz", b"\x1f\x8b not text\n")
    append(tmp_path / "app/logs/log-skip.log", b"skipped\n")
    append(tmp_path / "app/logs/log-a.log", b"kept\n")
    async with RunningShipper(cfg):
        await wait_until(lambda: len(collector.events) >= 1)
        append(tmp_path / "app/logs/log-b.log", b"kept too\n")
        await wait_until(lambda: len(collector.events) >= 2)
    assert sorted(collector.messages()) == ["kept", "kept too"]
    assert all(os.path.basename(e["log"]["file"]["path"]) != "log-skip.log" for e in collector.events)
    assert orjson.loads(orjson.dumps(collector.events))  # events are plain JSON
