"""Case b: protocol clients -> one aggregator process -> blackhole OpenSearch (answers every _bulk).

The sender (benchmarks.ljload) and the blackhole each run in their own process; events/s is counted
by the sender from its first window to its last final ack, so it is what the aggregator finished.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import orjson

from benchmarks.cases.common import Context, mib, shipping_settings, start_aggregator
from benchmarks.procs import PYTHON, ROOT, free_port
from benchmarks.sinks import start_sink
from benchmarks.workload import message_bytes


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    work = ctx.dir("b")
    sink = start_sink("opensearch", free_port(), work)
    try:
        agg, port = start_aggregator(ctx, f"http://127.0.0.1:{sink.port}", work)
        try:
            ctx.say("b", f"{p.b_events:,} events over {p.b_connections} connections -> aggregator -> blackhole")
            agg.mark_cpu("start")
            out = subprocess.run(
                [PYTHON, "-m", "benchmarks.ljload", "--port", str(port), "--events", str(p.b_events),
                 "--connections", str(p.b_connections), "--window", str(p.window_size),
                 "--message-bytes", str(message_bytes(p.line_bytes))],
                capture_output=True, text=True, timeout=900, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            agg.mark_cpu("end")
            if out.returncode != 0:
                raise RuntimeError(f"load client failed: {out.stderr.strip()[-800:]}")
            load = orjson.loads(out.stdout.strip().splitlines()[-1])
            alive = agg.alive()
        finally:
            agg.stop()
    finally:
        sink.stop()
    if not alive:
        raise RuntimeError(f"aggregator exited during the run: {agg.log_tail()}")
    cpu = agg.cpu_between("start", "end")
    result = {
        "events": load["events"],
        "event_bytes": load["event_bytes"],
        "seconds": round(load["seconds"], 3),
        "events_per_s": load["events_per_s"],
        "aggregator_cpu_s": round(cpu, 3),
        "aggregator_cpu_utilisation": cpu / load["seconds"],
        "aggregator_rss_peak_mib": mib(agg.peak_rss()),
        "sink_docs": sink.events,
    }
    ctx.say("b", f"{result['events_per_s']:,.0f} events/s, aggregator RSS {result['aggregator_rss_peak_mib']} MiB")
    return {
        "title": "protocol client -> aggregator -> blackhole OpenSearch",
        "conditions": {
            "connections": p.b_connections,
            "compression_level": 0,
            **shipping_settings(p),
            "clock": "first window sent -> last final ack received",
        },
        "result": result,
    }
