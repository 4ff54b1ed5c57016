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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.cases.common import Context, mib, shipping_settings, start_aggregator
from benchmarks.procs import PYTHON, Measured, free_port, spawn, wait_port
from benchmarks.profiles import Profile
from benchmarks.sinks import start_sink
from benchmarks.workload import message_bytes


@dataclass(frozen=True)
class Load:
    """What the senders send: `events` in windows of `window` over `connections`, spread over
    `loaders` processes (one Python process cannot drive hundreds of connections), the senders
    pinned to `cpu` (a `taskset -c` list) when given."""

    events: int
    connections: int
    window: int
    pending: int
    message_bytes: int
    loaders: int = 1
    cpu: str | None = None

    @classmethod
    def of(cls, p: Profile) -> Load:
        """Case b's load: the profile's events, connections and windows."""
        return cls(p.b_events, p.b_connections, p.window_size, p.max_pending_windows, message_bytes(p.line_bytes))


def _split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal shares (the first ones one larger)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _load(port: int, agg: Measured, work: Path, load: Load) -> dict[str, Any]:
    loaders = max(1, min(load.loaders, load.connections))
    agg.mark_cpu("start")
    wall0 = time.time()
    senders: list[Measured] = []
    try:
        for i, (events, connections) in enumerate(
            zip(_split(load.events, loaders), _split(load.connections, loaders), strict=True)
        ):
            argv = [PYTHON, "-m", "benchmarks.ljload", "--port", str(port), "--events", str(events),
                    "--connections", str(connections), "--window", str(load.window),
                    "--message-bytes", str(load.message_bytes), "--pending", str(load.pending)]  # fmt: skip
            senders.append(spawn("ljload" if loaders == 1 else f"ljload-{i}", argv, work, stdout_pipe=True,
                                 cpu=load.cpu))  # fmt: skip
        outs = [s.popen.communicate(timeout=900)[0] for s in senders]
    finally:
        for s in senders:
            s.stop()
    agg.mark_cpu("end")
    wall1 = time.time()
    for s in senders:
        if s.popen.returncode != 0:
            raise RuntimeError(f"load client failed: {s.log_tail()}")
    if not agg.alive():
        raise RuntimeError(f"aggregator exited during the run: {agg.log_tail()}")
    reports: list[dict[str, Any]] = [orjson.loads(out.strip().splitlines()[-1]) for out in outs]
    events = sum(r["events"] for r in reports)
    # from the first sender's first window to the last sender's last final ack
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    cpu = agg.cpu_between("start", "end")
    sender_cpu = sum(s.samples[-1].cpu for s in senders if s.samples)
    return {
        "events": events,
        "event_bytes": reports[0]["event_bytes"],
        "seconds": round(seconds, 3),
        "events_per_s": events / seconds,
        "aggregator_cpu_s": round(cpu, 3),
        "aggregator_cpu_utilisation": cpu / seconds,
        "aggregator_cpu_us_per_event": cpu / max(1, events) * 1e6,
        # what one fully available core would do at this CPU cost (the cores here are shared)
        "events_per_cpu_s": events / cpu if cpu > 0 else None,
        "aggregator_rss_peak_mib": mib(agg.peak_rss()),
        # share of the run the aggregator was ready to run but another process had the core
        "aggregator_runqueue_wait_share": agg.wait_over(wall0, wall1) / max(wall1 - wall0, 1e-6),
        # the senders' whole lives (building their events too): near 1.0 per sender core means the
        # senders, not the aggregator, may be the limit
        "sender_cpu_s": round(sender_cpu, 3),
        "senders": loaders,
    }


def with_sink(ctx: Context, work: Path, load: Load | None = None, cpu: str | None = None) -> dict[str, Any]:
    """`load` (case b's by default) into the aggregator with its blackhole sink, pinned to `cpu`."""
    p = ctx.profile
    port = free_port()
    argv = [PYTHON, "-m", "benchmarks.aggregator_blackhole", "--serve", str(port),
            "--max-docs", str(p.bulk_max_docs), "--concurrency", str(p.bulk_concurrency)]  # fmt: skip
    agg = spawn("aggregator-sink", argv, work, cpu=cpu)
    try:
        wait_port(port, 60, agg.popen)
        return _load(port, agg, work, load or Load.of(p))
    finally:
        agg.stop()


def with_http(ctx: Context, work: Path) -> dict[str, Any]:
    sink = start_sink("opensearch", free_port(), work)
    try:
        agg, port = start_aggregator(ctx, f"http://127.0.0.1:{sink.port}", work)
        try:
            result = _load(port, agg, work, Load.of(ctx.profile))
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
