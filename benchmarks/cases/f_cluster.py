"""Case f: files -> shipper -> 1, 2 and 3 aggregators -> a 3-node OpenSearch cluster, against the
cluster's own ceiling measured in the same run.

1. The shipper reads the file set into a recording blackhole: those events are the documents.
2. A 3-node cluster (benchmarks.cluster) with logship's template at 1 replica, warmed up.
3. The ceiling: the recorded documents as the aggregator's own `_bulk` bodies, sent round-robin to
   the three nodes with `bulk_concurrency` requests in flight per node (what 3 aggregators keep in
   flight), by the minimal loader (benchmarks.loader), watched by the same `_count` poll as logship.
4. logship with N aggregators (each listing all three nodes) and one shipper load balancing over
   them (`loadbalance: true`, `max_pending_windows` times N windows in flight), for N in
   `f_aggregators`; docs/s from `_count` every 250 ms, and the events each aggregator indexed (its
   /metrics).
The machine's cores are shared by the three JVMs, the aggregators and the shipper: the figures show
how the pipeline shares a box with its cluster, not what separate machines would give.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.cases.c_pipeline import STALL_S, ceiling_bodies, watch_count, watched_load
from benchmarks.cases.common import Context, aggregator_config, mib, scrape, shipper_config, shipping_settings
from benchmarks.cluster import BenchCluster
from benchmarks.loader import ceiling, steady_rate
from benchmarks.procs import Measured, free_port, spawn_logship, wait_port
from benchmarks.workload import FileSet, prewrite

PATTERN = "logstash-logs-*"
INDEXED = "logship_aggregator_events_indexed_total"


def start_aggregators(ctx: Context, cluster: BenchCluster, n: int, tag: str) -> list[tuple[Measured, int]]:
    out: list[tuple[Measured, int]] = []
    try:
        for i in range(n):
            work = ctx.dir(f"f-{tag}-agg{i}")
            port = free_port()
            cfg = aggregator_config(ctx.profile, cluster.url, port, work)
            cfg["opensearch"]["hosts"] = cluster.urls
            cfg["template"]["replicas"] = 1
            proc = spawn_logship("aggregator", cfg, work, f"aggregator-{i}", ctx.profile_dir, profiler=ctx.profiler)
            proc.metrics_port = cfg["http"]["port"]
            out.append((proc, port))
            wait_port(port, 60, proc.popen)
    except BaseException:
        for proc, _ in out:
            proc.stop()
        raise
    return out


async def ceiling_over(urls: list[str], bodies: list[tuple[int, bytes]], per_node: int) -> dict[str, Any]:
    """The loader against every node at once, the bodies dealt round-robin; one docs/s for the cluster."""
    parts = [bodies[i :: len(urls)] for i in range(len(urls))]
    t0 = time.monotonic()
    rows = await asyncio.gather(*(ceiling(u, part, per_node) for u, part in zip(urls, parts, strict=True)))
    elapsed = time.monotonic() - t0
    total = sum(r["docs"] for r in rows)
    # whole-run rate: each node's loader has only a few bodies, too few for a 10%-90% window
    return {
        "docs": total,
        "seconds": round(elapsed, 3),
        "docs_per_s": total / elapsed if elapsed > 0 else 0.0,
        "requests_with_errors": sum(r["requests_with_errors"] for r in rows),
        "in_flight": per_node * len(urls),
    }


def pipeline(ctx: Context, cluster: BenchCluster, fs: FileSet, n: int) -> dict[str, Any]:
    p = ctx.profile
    tag = f"{n}agg"
    cluster.delete(PATTERN)
    aggs = start_aggregators(ctx, cluster, n, tag)
    cpu0 = cluster.cpu_seconds()
    try:
        work = ctx.dir(f"f-{tag}-shipper")  # its own registry
        cfg = shipper_config(ctx.profile, fs.glob, aggs[0][1], work)
        cfg["output"]["hosts"] = [f"127.0.0.1:{port}" for _, port in aggs]
        cfg["output"]["loadbalance"] = n > 1
        # each connection takes at most its share of the windows in flight: with fewer windows than
        # aggregators, one of them would get nothing (hundreds of shippers, each with its own
        # windows, spread production load instead)
        cfg["output"]["max_pending_windows"] = p.max_pending_windows * n
        shipper = spawn_logship("shipper", cfg, work, "shipper", ctx.profile_dir, profiler=ctx.profiler)
        try:
            procs = [shipper, *(a for a, _ in aggs)]
            timeline, seconds, got = watch_count(ctx, cluster, PATTERN, fs.lines, procs, f"{n} aggregator(s)", case="f")
            if got < fs.lines:
                raise RuntimeError(
                    f"{n} aggregator(s): {got:,} of {fs.lines:,} documents, none new for {STALL_S:.0f} s"
                )
        finally:
            shipper.stop()
        cluster_cpu = cluster.cpu_seconds() - cpu0
        per_agg = [scrape(a.metrics_port).get(INDEXED, 0.0) for a, _ in aggs]
    finally:
        for a, _ in aggs:
            a.stop()
    return {
        "aggregators": n,
        "docs": fs.lines,
        "docs_indexed": cluster.count(PATTERN, refresh=True),
        "seconds": round(seconds, 3),
        "docs_per_s": fs.lines / seconds if seconds else 0.0,
        "steady_docs_per_s": steady_rate(timeline, fs.lines),
        "indexed_per_aggregator": per_agg,
        "shipper_max_pending_windows": p.max_pending_windows * n,
        "shipper_cpu_s": round(shipper.samples[-1].cpu, 2) if shipper.samples else None,
        "aggregators_cpu_s": [round(a.samples[-1].cpu, 2) if a.samples else None for a, _ in aggs],
        "aggregators_rss_peak_mib": [mib(a.peak_rss()) for a, _ in aggs],
        "cluster_cpu_s": round(cluster_cpu, 2),
        "timeline": [(round(t, 2), c) for t, c in timeline],
    }


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    ctx.say("f", f"writing {p.f_lines:,} lines into {p.c_files} files")
    fs = prewrite(ctx.dir("files-f"), p.c_files, p.f_lines, p.line_bytes)
    ctx.say("f", "recording the shipper's documents for the ceiling loader")
    bodies, docs = ceiling_bodies(ctx, fs)
    cluster = BenchCluster(heap=p.f_cluster_heap)
    ctx.say("f", f"starting a 3-node OpenSearch cluster on ports {cluster.base_port}-{cluster.base_port + 2}")
    cluster.start()
    try:
        version = cluster.version()
        # logship's template (1 replica) from an aggregator's start, then a warm-up not counted
        for a, _ in start_aggregators(ctx, cluster, 1, "prime"):
            a.stop()
        ctx.say("f", "warming up the cluster (not counted)")
        asyncio.run(ceiling_over(cluster.urls, bodies[: max(1, len(bodies) // 4)], p.bulk_concurrency))
        cluster.delete(PATTERN)
        rows = []
        for n in p.f_aggregators:
            ctx.say("f", f"logship with {n} aggregator(s)")
            row = pipeline(ctx, cluster, fs, n)
            ctx.say("f", f"{n} aggregator(s): {row['docs_per_s']:,.0f} docs/s; per aggregator "
                         f"{[int(x) for x in row['indexed_per_aggregator']]}")  # fmt: skip
            rows.append(row)
            cluster.delete(PATTERN)
        ctx.say("f", f"ceiling: {docs:,} docs in {len(bodies)} bodies, {p.bulk_concurrency} in flight per node")
        cpu0 = cluster.cpu_seconds()
        ceil = watched_load(
            ctx,
            cluster,
            PATTERN,
            docs,
            "ceiling",
            lambda: ceiling_over(cluster.urls, bodies, p.bulk_concurrency),
            case="f",
        )
        ceil["cluster_cpu_s"] = round(cluster.cpu_seconds() - cpu0, 2)
        ceil["docs_indexed"] = cluster.count(PATTERN, refresh=True)
        cluster.delete(PATTERN)
        ctx.say("f", f"ceiling {ceil['docs_per_s']:,.0f} docs/s")
    finally:
        cluster.stop()
    for row in rows:
        row["ratio_to_ceiling"] = row["docs_per_s"] / ceil["docs_per_s"] if ceil["docs_per_s"] else 0.0
    return {
        "title": "files -> shipper -> 1/2/3 aggregators -> 3-node OpenSearch cluster, against its ceiling",
        "conditions": {
            **fs.describe(),
            **shipping_settings(p),
            "opensearch": f"{version}, 3 nodes on this machine, heap {p.f_cluster_heap} each",
            "index_template": "logship's (1 shard, 1 replica)",
            "rate": "docs_per_s = all documents / seconds to the last one searchable (_count every 250 ms), "
            "for logship and the ceiling alike (the ratio uses these); steady_docs_per_s (10% -> 90%) for logship",
            "ceiling": f"loader, {p.bulk_concurrency} requests in flight per node, after the logship runs",
        },
        "rows": rows,
        "ceiling": ceil,
    }
