"""The conditions every figure is measured under: machine, versions, and what else was running."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from typing import Any

import orjson
import psutil
import xxhash

import logship

# one shipper-shaped event: the reference work below is what the shipper and aggregator do per event
_REFERENCE_EVENT = orjson.dumps(
    {
        "@timestamp": "2026-12-02T12:00:00.123Z",
        "message": "GET /api/v1/items?page=3 200 1532 0.012 " + "x" * 180,
        "stream": "stdout",
        "log": {"offset": 123456, "file": {"path": "/var/log/containers/web-7d9f_default_web-0123456789ab.log"}},
        "kubernetes": {"namespace": "default", "pod": {"name": "web-7d9f"}, "container": {"name": "web"}},
        "host": {"name": "ip-10-0-1-2"},
        "agent": {"type": "logship", "version": "0.1.0"},
        "tags": ["containers"],
        "@metadata": {"_id": "0123456789abcdef0123000000012345"},
    }
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _command_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else None


def machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "load_average_at_start": [round(load1, 2), round(load5, 2)],
    }


def reference_us(ops: int = 20_000, repeats: int = 5) -> float:
    """CPU microseconds of one fixed reference operation (decode, re-encode and hash one event), the
    median of `repeats` rounds.

    The host under these shared cores is not equally fast from hour to hour: the same aggregator run
    has cost from 2.7 to 22.5 us of CPU per event on this machine kind. Absolute figures of two runs
    compare only through this: a run whose reference took twice as long had a host twice as slow."""
    loads, dumps, digest = orjson.loads, orjson.dumps, xxhash.xxh3_64_intdigest
    event = _REFERENCE_EVENT
    rounds = []
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(ops):
            digest(dumps(loads(event)))
        rounds.append((time.process_time() - t0) / ops)
    rounds.sort()
    return round(rounds[len(rounds) // 2] * 1e6, 3)


def steal_seconds() -> float:
    """CPU seconds the hypervisor has stolen from this VM since boot (0 where not reported)."""
    return float(getattr(psutil.cpu_times(), "steal", 0.0))


def _git_commit() -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = _command_version(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    dirty = _command_version(["git", "-C", root, "status", "--porcelain", "--", "logship", "shipper", "aggregator"])
    return None if out is None else out + ("+uncommitted" if dirty else "")


def versions() -> dict[str, Any]:
    return {
        "logship": logship.__version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def other_load_note(own_pids: set[int]) -> dict[str, Any]:
    """How busy the machine is with processes that are not ours (the cores are shared)."""
    busy: list[tuple[float, str]] = []
    procs = list(psutil.process_iter(["pid", "name"]))
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    psutil.cpu_percent(None)
    time.sleep(1.0)
    total = psutil.cpu_percent(None)
    for p in procs:
        if p.pid in own_pids:
            continue
        try:
            pct = p.cpu_percent(None)
        except psutil.Error:
            continue
        if pct >= 5.0:
            busy.append((pct, p.info["name"] or "?"))
    busy.sort(reverse=True)
    return {
        "machine_cpu_percent_1s": total,
        "other_busy_processes": [f"{name} {pct:.0f}%" for pct, name in busy[:8]],
    }
