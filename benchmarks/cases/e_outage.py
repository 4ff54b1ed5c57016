"""Case e: memory of shipper and aggregator while OpenSearch is away, and the drain afterwards.

Under a steady load the benchmark node is paused (SIGSTOP) for the outage, then resumed; the load
stops at the moment of resumption. RSS of both processes is sampled throughout; the drain time is
from resumption until every line written is searchable.

Fluent Bit, where built, then meets the same outage on its own (`opensearch` output into its own
index, `Retry_Limit False` so it never drops, and the Helm chart's `Mem_Buf_Limit 5MB` on the tail
input, which pauses reading while the output is blocked).
"""

from __future__ import annotations

import json
import time
from typing import Any

from benchmarks.cases.common import Context, Throttle, index_pattern, mib, shipping_settings, start_into_opensearch
from benchmarks.procs import Measured
from benchmarks.workload import start_live_load

FLUENTBIT_MEM_BUF_LIMIT = "5MB"  # fluent/helm-charts' default for the tail input


def run_agent(ctx: Context, agent: str = "logship") -> dict[str, Any]:
    p = ctx.profile
    node = ctx.node
    assert node is not None
    work = ctx.dir(f"e-{agent}")
    root = work / "node"
    root.mkdir(parents=True, exist_ok=True)
    glob = str(root / "var/log/containers/*.log")
    pattern = index_pattern(agent)
    node.delete(pattern)
    shipper: Measured | None = None
    agg: Measured | None = None
    load = None
    paused = False
    progress = Throttle(ctx, "e", 5.0)
    try:
        shipper, agg = start_into_opensearch(ctx, agent, glob, work, mem_buf_limit=FLUENTBIT_MEM_BUF_LIMIT)
        load = start_live_load(root, p.e_rate, p.e_warmup + p.e_outage, p.e_files, p.line_bytes, work)
        t0 = time.monotonic()
        time.sleep(p.e_warmup)
        ctx.say("e", f"{agent}: pausing OpenSearch for {p.e_outage:.0f} s under {p.e_rate:,} lines/s")
        node.pause()
        paused = True
        t_pause = time.monotonic()
        while time.monotonic() - t_pause < p.e_outage:
            time.sleep(0.5)
            rss = (mib(shipper.peak_rss(since=t_pause)), mib(agg.peak_rss(since=t_pause)) if agg else 0.0)
            progress(f"{agent}: outage {time.monotonic() - t_pause:.0f}/{p.e_outage:.0f} s, RSS shipper {rss[0]} MiB"
                     + (f", aggregator {rss[1]} MiB" if agg else ""))  # fmt: skip
        node.resume()
        paused = False
        t_resume = time.monotonic()
        load.popen.wait(60)
        manifest = json.loads((root / "loggen-manifest.json").read_text())
        written = int(manifest["events"])
        ctx.say("e", f"{agent}: resumed; draining {written:,} lines")
        n = 0
        while time.monotonic() - t_resume < p.e_drain_timeout:
            n = node.count(pattern)
            if n >= written:
                break
            progress(f"{agent}: drain: {n:,}/{written:,} docs")
            time.sleep(0.25)
        t_drained = time.monotonic()
        drained = n >= written
    finally:
        if paused:
            node.resume()
        for proc in (load, shipper, agg):
            if proc is not None:
                proc.stop()
    result: dict[str, Any] = {
        "agent": agent,
        "rate_lines_per_s": p.e_rate,
        "outage_s": p.e_outage,
        "lines_written": written,
        "docs_indexed": node.count(pattern, refresh=True),
        "drained": drained,
        "drain_s": round(t_drained - t_resume, 2),
        "shipper_rss_peak_outage_mib": mib(shipper.peak_rss(since=t_pause, until=t_resume)),
        "shipper_rss_peak_mib": mib(shipper.peak_rss()),
        "pause_at_s": round(t_pause - t0, 2),
        "resume_at_s": round(t_resume - t0, 2),
        "shipper_rss_series": [(t, mib(r)) for t, r in shipper.rss_series(t0)][::5],
    }
    if agg is not None:
        result["aggregator_rss_peak_outage_mib"] = mib(agg.peak_rss(since=t_pause, until=t_resume))
        result["aggregator_rss_peak_mib"] = mib(agg.peak_rss())
        result["aggregator_rss_series"] = [(t, mib(r)) for t, r in agg.rss_series(t0)][::5]
    node.delete(pattern)
    ctx.say("e", f"{agent}: drained in {result['drain_s']} s; RSS during outage: shipper "
            f"{result['shipper_rss_peak_outage_mib']} MiB"
            + (f", aggregator {result['aggregator_rss_peak_outage_mib']} MiB" if agg else ""))  # fmt: skip
    return result


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    result = run_agent(ctx)
    peers = []
    if ctx.peers.fluentbit:
        try:
            peers.append(run_agent(ctx, "fluentbit"))
        except RuntimeError as exc:
            peers.append({"agent": "fluentbit", "error": str(exc)})
    return {
        "title": "OpenSearch outage under load: memory and drain",
        "conditions": {
            "line_bytes": p.line_bytes,
            "files": p.e_files,
            "rate_lines_per_s": p.e_rate,
            "warmup_s": p.e_warmup,
            "outage_s": p.e_outage,
            "outage": "SIGSTOP of the OpenSearch process; load stops at SIGCONT",
            "fluentbit": f"opensearch output, Retry_Limit False, tail Mem_Buf_Limit {FLUENTBIT_MEM_BUF_LIMIT}"
            if ctx.peers.fluentbit
            else ctx.peers.fluentbit_reason,
            **shipping_settings(p),
        },
        "result": result,
        "peers": peers,
    }
