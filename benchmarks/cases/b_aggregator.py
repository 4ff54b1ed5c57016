"""Case b: protocol clients -> one aggregator process -> a blackhole sink.

Two variants, each a real aggregator process sampled with psutil:
- `sink`: the aggregator with its blackhole sink (`benchmarks.aggregator_blackhole --serve`: server,
  decoding, routing, encoding and batching, every bulk accepted at once). The target is judged here.
- `http`: `logship aggregator -c` sending real `_bulk` requests to a blackhole OpenSearch (its own
  process answering every bulk with success): adds the HTTP client and request bodies.
The sender (`benchmarks.ljload`) runs in its own process; events/s is counted from its first window
to its last final ack, so it is what the aggregator finished end to end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.cases.common import Context, mib, shipping_settings, start_aggregator
from benchmarks.procs import PYTHON, Measured, free_port, spawn, wait_port
from benchmarks.sinks import start_sink
from benchmarks.workload import message_bytes


def _load(ctx: Context, port: int, agg: Measured, work: Path) -> dict[str, Any]:
    p = ctx.profile
    agg.mark_cpu("start")
    wall0 = time.time()
    argv = [PYTHON, "-m", "benchmarks.ljload", "--port", str(port), "--events", str(p.b_events),
            "--connections", str(p.b_connections), "--window", str(p.window_size),
            "--message-bytes", str(message_bytes(p.line_bytes)), "--pending", str(p.max_pending_windows)]  # fmt: skip
    sender = spawn("ljload", argv, work, stdout_pipe=True)
    try:
        out, _ = sender.popen.communicate(timeout=900)
    finally:
        sender.stop()
    agg.mark_cpu("end")
    wall1 = time.time()
    if sender.popen.returncode != 0:
        raise RuntimeError(f"load client failed: {sender.log_tail()}")
    if not agg.alive():
        raise RuntimeError(f"aggregator exited during the run: {agg.log_tail()}")
    load: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
    cpu = agg.cpu_between("start", "end")
    sender_cpu = sender.samples[-1].cpu if sender.samples else 0.0
    return {
        "events": load["events"],
        "event_bytes": load["event_bytes"],
        "seconds": round(load["seconds"], 3),
        "events_per_s": load["events_per_s"],
        "aggregator_cpu_s": round(cpu, 3),
        "aggregator_cpu_utilisation": cpu / load["seconds"],
        "aggregator_cpu_us_per_event": cpu / max(1, load["events"]) * 1e6,
        # what one fully available core would do at this CPU cost (the cores here are shared)
        "events_per_cpu_s": load["events"] / cpu if cpu > 0 else None,
        "aggregator_rss_peak_mib": mib(agg.peak_rss()),
        # share of the run the aggregator was ready to run but another process had the core
        "aggregator_runqueue_wait_share": agg.wait_over(wall0, wall1) / max(wall1 - wall0, 1e-6),
        # the sender's whole life (building its events too): near 1.0 means the sender, not the
        # aggregator, may be the limit
        "sender_cpu_s": round(sender_cpu, 3),
    }


def with_sink(ctx: Context, work: Path) -> dict[str, Any]:
    p = ctx.profile
    port = free_port()
    argv = [PYTHON, "-m", "benchmarks.aggregator_blackhole", "--serve", str(port),
            "--max-docs", str(p.bulk_max_docs), "--concurrency", str(p.bulk_concurrency)]  # fmt: skip
    agg = spawn("aggregator-sink", argv, work)
    try:
        wait_port(port, 60, agg.popen)
        return _load(ctx, port, agg, work)
    finally:
        agg.stop()


def with_http(ctx: Context, work: Path) -> dict[str, Any]:
    sink = start_sink("opensearch", free_port(), work)
    try:
        agg, port = start_aggregator(ctx, f"http://127.0.0.1:{sink.port}", work)
        try:
            result = _load(ctx, port, agg, work)
        finally:
            agg.stop()
    finally:
        sink.stop()
    result["sink_docs"] = sink.events
    return result


def _say(ctx: Context, what: str, r: dict[str, Any]) -> None:
    ctx.say("b", f"{what}: {r['events_per_s']:,.0f} events/s, {r['aggregator_cpu_us_per_event']:.1f} us CPU/event, "
            f"RSS {r['aggregator_rss_peak_mib']} MiB")  # fmt: skip


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    work = ctx.dir("b")
    ctx.say("b", f"{p.b_events:,} events over {p.b_connections} connections -> aggregator with its blackhole sink")
    sink = with_sink(ctx, work)
    _say(ctx, "blackhole sink", sink)
    ctx.say("b", "same load -> logship aggregator -> _bulk over HTTP to a blackhole OpenSearch")
    http = with_http(ctx, work)
    _say(ctx, "HTTP blackhole", http)
    return {
        "title": "protocol client -> aggregator -> blackhole",
        "conditions": {
            "connections": p.b_connections,
            "windows_in_flight_per_connection": p.max_pending_windows,
            "compression_level": 0,
            **shipping_settings(p),
            "clock": "first window sent -> last final ack received",
        },
        "result": sink,
        "http": http,
    }
