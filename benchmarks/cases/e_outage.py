"""Case e: memory of shipper and aggregator while OpenSearch is away, and the drain afterwards.

Under a steady load the benchmark node is paused (SIGSTOP) for the outage, then resumed; the load
stops at the moment of resumption. RSS of both processes is sampled throughout; the drain time is
from resumption until every line written is searchable.
"""

from __future__ import annotations

import json
import time
from typing import Any

from benchmarks.cases.common import Context, Throttle, mib, shipping_settings, start_aggregator, start_shipper
from benchmarks.workload import start_live_load

PATTERN = "logstash-logs-*"


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    node = ctx.node
    assert node is not None
    work = ctx.dir("e")
    root = work / "node"
    root.mkdir(parents=True, exist_ok=True)
    node.delete(PATTERN)
    agg, port = start_aggregator(ctx, node.url, work)
    shipper = load = None
    paused = False
    progress = Throttle(ctx, "e", 5.0)
    try:
        shipper = start_shipper(ctx, str(root / "var/log/containers/*.log"), port, work)
        load = start_live_load(root, p.e_rate, p.e_warmup + p.e_outage, p.e_files, p.line_bytes, work)
        t0 = time.monotonic()
        time.sleep(p.e_warmup)
        ctx.say("e", f"pausing OpenSearch for {p.e_outage:.0f} s under {p.e_rate:,} lines/s")
        node.pause()
        paused = True
        t_pause = time.monotonic()
        while time.monotonic() - t_pause < p.e_outage:
            time.sleep(0.5)
            rss = (mib(shipper.peak_rss(since=t_pause)), mib(agg.peak_rss(since=t_pause)))
            progress(f"outage {time.monotonic() - t_pause:.0f}/{p.e_outage:.0f} s, RSS shipper {rss[0]} MiB, "
                     f"aggregator {rss[1]} MiB")  # fmt: skip
        node.resume()
        paused = False
        t_resume = time.monotonic()
        load.popen.wait(60)
        manifest = json.loads((root / "loggen-manifest.json").read_text())
        written = int(manifest["events"])
        ctx.say("e", f"resumed; draining {written:,} lines")
        n = 0
        while time.monotonic() - t_resume < p.e_drain_timeout:
            n = node.count(PATTERN)
            if n >= written:
                break
            progress(f"drain: {n:,}/{written:,} docs")
            time.sleep(0.25)
        t_drained = time.monotonic()
        drained = n >= written
    finally:
        if paused:
            node.resume()
        for proc in (load, shipper, agg):
            if proc is not None:
                proc.stop()
    result = {
        "rate_lines_per_s": p.e_rate,
        "outage_s": p.e_outage,
        "lines_written": written,
        "docs_indexed": node.count(PATTERN, refresh=True),
        "drained": drained,
        "drain_s": round(t_drained - t_resume, 2),
        "shipper_rss_peak_outage_mib": mib(shipper.peak_rss(since=t_pause, until=t_resume)),
        "aggregator_rss_peak_outage_mib": mib(agg.peak_rss(since=t_pause, until=t_resume)),
        "shipper_rss_peak_mib": mib(shipper.peak_rss()),
        "aggregator_rss_peak_mib": mib(agg.peak_rss()),
        "pause_at_s": round(t_pause - t0, 2),
        "resume_at_s": round(t_resume - t0, 2),
        "shipper_rss_series": [(t, mib(r)) for t, r in shipper.rss_series(t0)][::5],
        "aggregator_rss_series": [(t, mib(r)) for t, r in agg.rss_series(t0)][::5],
    }
    node.delete(PATTERN)
    peaks = (result["shipper_rss_peak_outage_mib"], result["aggregator_rss_peak_outage_mib"])
    ctx.say(
        "e", f"drained in {result['drain_s']} s; RSS during outage: shipper {peaks[0]} MiB, aggregator {peaks[1]} MiB"
    )
    return {
        "title": "OpenSearch outage under load: memory and drain",
        "conditions": {
            "line_bytes": p.line_bytes,
            "files": p.e_files,
            "rate_lines_per_s": p.e_rate,
            "warmup_s": p.e_warmup,
            "outage_s": p.e_outage,
            "outage": "SIGSTOP of the OpenSearch process; load stops at SIGCONT",
            **shipping_settings(p),
        },
        "result": result,
    }
