"""Case d: how long from a line written to its document being searchable, under a steady load.

`logship loggen` writes the load at a fixed rate in its own process; the probe writes a uniquely
marked line 10 times a second into its own container log and notes the time; a poller searches
for the probe token every 100 ms and notes when each line first appears. Latency includes the
aggregator's bulk delay and OpenSearch's 1 s refresh, as a user searching for the line sees it.

Fluent Bit, where built, runs the same load and probes into its own index (`opensearch` output, flush
= the aggregator's bulk delay): the latency this node allows a shipper written in C, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from benchmarks.cases.common import Context, index_pattern, mib, shipping_settings, start_into_opensearch
from benchmarks.loader import LatencyPoller, percentiles
from benchmarks.procs import Measured
from benchmarks.workload import ProbeWriter, start_live_load

WARMUP = 2.0


async def _probe(ctx: Context, writer: ProbeWriter, poller: LatencyPoller, seconds: float) -> None:
    stop = asyncio.Event()
    poll = asyncio.create_task(poller.poll(stop))
    interval = 1.0 / ctx.profile.d_probes_per_s
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        writer.write()
        await asyncio.sleep(interval)
    deadline = time.monotonic() + 30
    while len(poller.seen) < writer.seq and time.monotonic() < deadline:  # noqa: ASYNC110  (bounded wait)
        await asyncio.sleep(0.1)
    stop.set()
    await poll


def run_rate(ctx: Context, rate: int, agent: str = "logship") -> dict[str, Any]:
    p = ctx.profile
    node = ctx.node
    assert node is not None
    work = ctx.dir(f"d-{agent}-{rate}")
    root = work / "node"
    glob = str(root / "var/log/containers/*.log")
    pattern = index_pattern(agent)
    node.delete(pattern)
    writer = ProbeWriter(root)
    shipper = agg = load = None
    try:
        shipper, agg = start_into_opensearch(ctx, agent, glob, work)
        measured = [m for m in (shipper, agg) if m is not None]
        load = start_live_load(root, rate, p.d_seconds + WARMUP, p.d_files, p.line_bytes, work)
        time.sleep(WARMUP)
        ctx.say("d", f"{agent} {rate:,} lines/s: probing for {p.d_seconds:.0f} s")
        for m in measured:
            m.mark_cpu("start")
        # Fluent Bit's docker/cri parsers keep the line in `log`
        poller = LatencyPoller(node.url, writer.token, pattern, field="message" if agent == "logship" else "log")
        t0 = time.monotonic()
        asyncio.run(_probe(ctx, writer, poller, p.d_seconds))
        wall = time.monotonic() - t0
        for m in measured:
            m.mark_cpu("end")
        load.popen.wait(60)
    finally:
        writer.close()
        for proc in (load, shipper, agg):
            if proc is not None:
                proc.stop()
    manifest = json.loads((root / "loggen-manifest.json").read_text())
    latencies = [poller.seen[s] - t for s, t in writer.written.items() if s in poller.seen]
    stats = percentiles(latencies)
    written = writer.seq
    result = {
        "agent": agent,
        "rate_lines_per_s": rate,
        # what the generator really wrote (it may fall behind its rate on a busy machine)
        "load_lines_written": int(manifest["events"]),
        "load_achieved_lines_per_s": round(int(manifest["events"]) / max(float(manifest["elapsed_s"]), 1e-6)),
        "probes": written,
        "probes_seen": len(latencies),
        "latency_s": {k: round(v, 3) for k, v in stats.items()},
        **_usage("shipper", shipper, wall),
        **_usage("aggregator", agg, wall),
        "latencies": [round(x, 3) for x in sorted(latencies)],
    }
    ctx.say("d", f"{agent} {rate:,} lines/s: p50 {stats.get('p50', 0):.2f} s, p99 {stats.get('p99', 0):.2f} s "
            f"({len(latencies)}/{written} probes seen)")  # fmt: skip
    node.delete(pattern)
    return result


def _usage(role: str, proc: Measured | None, wall: float) -> dict[str, Any]:
    if proc is None:
        return {}
    return {
        f"{role}_cpu_utilisation": proc.cpu_between("start", "end") / wall,
        f"{role}_rss_peak_mib": mib(proc.peak_rss()),
    }


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    return {
        "title": "latency: line written -> document searchable",
        "conditions": {
            "line_bytes": p.line_bytes,
            "files": p.d_files,
            "seconds_per_rate": p.d_seconds,
            "probes_per_s": p.d_probes_per_s,
            "poll_interval_s": 0.1,
            "opensearch_refresh_interval_s": 1.0,
            "shipper_compression_level": 0,
            **shipping_settings(p),
        },
        "rows": [run_rate(ctx, rate) for rate in p.d_rates],
        "peer_rows": [run_rate(ctx, rate, "fluentbit") for rate in p.d_rates] if ctx.peers.fluentbit else [],
        "peers": {
            "fluentbit": ctx.peers.fluentbit_version or f"not measured: {ctx.peers.fluentbit_reason}",
        },
    }
