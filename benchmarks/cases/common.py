"""What every case needs: the run context, progress lines, and configs of the processes under test."""

from __future__ import annotations

import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.node import BenchNode
from benchmarks.peers import fluentbit
from benchmarks.procs import Measured, free_port, spawn_logship, wait_port
from benchmarks.profiles import Profile


@dataclass
class Peers:
    filebeat: str | None = None  # binary path, or None with the reason below
    filebeat_version: str | None = None
    filebeat_reason: str = ""
    filebeat9: str | None = None  # Filebeat 9.x beside 7.17
    filebeat9_version: str | None = None
    filebeat9_reason: str = ""
    rsyslogd: str | None = None
    rsyslog_version: str | None = None
    rsyslog_reason: str = ""
    fluentbit: str | None = None
    fluentbit_version: str | None = None
    fluentbit_reason: str = ""


@dataclass
class Context:
    profile: Profile
    workdir: Path
    node: BenchNode | None
    peers: Peers
    # (files, format, line bytes, MiB) -> a pre-written FileSet (cases a and g)
    file_sets: dict[tuple[int, str, int, int], Any] = field(default_factory=dict)
    profile_dir: Path | None = None  # profile shipper and aggregator, profiles here
    profiler: str = "sample"  # "sample" (py-spy from outside) or "cprofile" (see procs.spawn_logship)
    t_start: float = field(default_factory=time.monotonic)

    def say(self, case: str, msg: str) -> None:
        elapsed = time.monotonic() - self.t_start
        sys.stderr.write(f"[{elapsed:6.1f}s] {case}: {msg}\n")
        sys.stderr.flush()

    def dir(self, name: str) -> Path:
        d = self.workdir / name
        d.mkdir(parents=True, exist_ok=True)
        return d


class Throttle:
    """Calls `say` at most every `interval` seconds (progress lines during a measurement)."""

    def __init__(self, ctx: Context, case: str, interval: float = 2.0) -> None:
        self.ctx, self.case, self.interval, self.last = ctx, case, interval, time.monotonic()

    def __call__(self, msg: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.ctx.say(self.case, msg)


def shipper_config(
    profile: Profile, glob: str, output_port: int, workdir: Path, compression: int = 0
) -> dict[str, Any]:
    return {
        "name": "bench-node",
        "inputs": [{"type": "containers", "paths": [glob]}],
        "scan_interval": "1s",
        "registry": {"path": str(workdir / "registry.json"), "flush_interval": "1s"},
        "output": {
            "hosts": [f"127.0.0.1:{output_port}"],
            "loadbalance": profile.shipper_connections > 1,
            "workers": profile.shipper_connections,
            "window_size": profile.window_size,
            "max_pending_windows": profile.max_pending_windows,
            "compression_level": compression,
            "backoff": {"initial": "200ms", "max": "2s"},
        },
        "http": {"host": "127.0.0.1", "port": free_port()},
        "shutdown_timeout": "5s",
    }


def aggregator_config(profile: Profile, opensearch_url: str, listen_port: int, workdir: Path) -> dict[str, Any]:
    return {
        "listen": {"host": "127.0.0.1", "port": listen_port},
        "opensearch": {"hosts": [opensearch_url], "timeout": "60s"},
        "bulk": {
            "max_bytes": profile.bulk_max_bytes,
            "max_docs": profile.bulk_max_docs,
            "max_delay": profile.bulk_max_delay,
            "concurrency": profile.bulk_concurrency,
            "gzip": False,
        },
        "template": {"install": True, "replicas": 0},
        "dead_letter": {"path": str(workdir / "dead-letter.ndjson")},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "shutdown_timeout": "10s",
    }


def start_aggregator(
    ctx: Context, opensearch_url: str, workdir: Path, name: str = "aggregator"
) -> tuple[Measured, int]:
    port = free_port()
    cfg = aggregator_config(ctx.profile, opensearch_url, port, workdir)
    proc = spawn_logship("aggregator", cfg, workdir, name, ctx.profile_dir, profiler=ctx.profiler)
    proc.metrics_port = cfg["http"]["port"]
    try:
        wait_port(port, 60, proc.popen)
    except (RuntimeError, TimeoutError) as exc:
        proc.stop()
        raise RuntimeError(f"aggregator did not start: {exc}\n{proc.log_tail()}") from exc
    return proc, port


def start_shipper(
    ctx: Context,
    glob: str,
    output_port: int,
    workdir: Path,
    compression: int = 0,
    name: str = "shipper",
    cpu: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Measured:
    """`overrides`: top-level keys of the `shipper:` section replaced (e.g. `max_open_files`)."""
    cfg = shipper_config(ctx.profile, glob, output_port, workdir, compression) | (overrides or {})
    return spawn_logship("shipper", cfg, workdir, name, ctx.profile_dir, cpu=cpu, profiler=ctx.profiler)


def start_into_opensearch(
    ctx: Context, agent: str, glob: str, workdir: Path, **fluentbit_options: Any
) -> tuple[Measured, Measured | None]:
    """`agent` ("logship": shipper + aggregator, or "fluentbit" with its `opensearch` output, `Flush` =
    the aggregator's bulk delay) reading `glob` into the benchmark node: (shipper, aggregator or None)."""
    assert ctx.node is not None
    if agent != "logship":
        proc, _ = fluentbit.start(
            ctx, glob, workdir, opensearch_url=ctx.node.url, flush=ctx.profile.bulk_max_delay, **fluentbit_options
        )
        return proc, None
    agg, port = start_aggregator(ctx, ctx.node.url, workdir)
    try:
        return start_shipper(ctx, glob, port, workdir), agg
    except BaseException:
        agg.stop()
        raise


def index_pattern(agent: str) -> str:
    """Where `start_into_opensearch`'s agent writes: logship's daily indices, or Fluent Bit's own."""
    return "logstash-logs-*" if agent == "logship" else fluentbit.INDEX


def shipping_settings(profile: Profile) -> dict[str, Any]:
    """The settings printed under every figure that involves the shipper or aggregator."""
    return {
        "shipper_connections": profile.shipper_connections,
        "window_size": profile.window_size,
        "max_pending_windows": profile.max_pending_windows,
        "bulk_max_docs": profile.bulk_max_docs,
        "bulk_max_bytes": profile.bulk_max_bytes,
        "bulk_max_delay_s": profile.bulk_max_delay,
        "bulk_concurrency": profile.bulk_concurrency,
        "bulk_gzip": False,
    }


def mib(n: float) -> float:
    return round(n / 2**20, 1)


def scrape(port: int | None) -> dict[str, float]:
    """Samples of a process's Prometheus /metrics (name{labels} -> value); empty if unreachable."""
    if not port:
        return {}
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "le" in sample.labels:
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


def bulk_stats(metrics: dict[str, float]) -> dict[str, float | None]:
    """Average docs per bulk request and average bulk latency, from the aggregator's histograms."""
    n = metrics.get("logship_aggregator_bulk_docs_count")
    lat_n = metrics.get("logship_aggregator_bulk_latency_seconds_count")
    return {
        "bulk_requests": n,
        "avg_docs_per_bulk": metrics["logship_aggregator_bulk_docs_sum"] / n if n else None,
        "avg_bulk_latency_s": metrics["logship_aggregator_bulk_latency_seconds_sum"] / lat_n if lat_n else None,
    }
