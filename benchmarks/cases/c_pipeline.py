"""Case c: files -> shipper -> aggregator -> OpenSearch, and the node's ceiling in the same run.

1. The shipper reads the file set into a recording blackhole: those events are the documents.
2. logship end to end into the benchmark node; docs/s from `_count` polled every 250 ms.
3. The ceiling: the recorded documents as the aggregator's own pre-serialized `_bulk` bodies, same
   bulk size and concurrency, sent by a minimal aiohttp loader (benchmarks.loader), and watched by
   the same `_count` poll as the agents (`watched_load`).
4. Peers into the same node where available: Filebeat -> our aggregator, Fluent Bit (`opensearch`
   output) and rsyslog straight into OpenSearch.
The ratio uses steady rates (10% -> 90% of the documents), so process start-up is left out of both.

The fair variant (`c_fair`, the headline): OpenSearch pinned to one core and, on the other core, in
turn the loader, logship (shipper and aggregator), Filebeat -> aggregator, Fluent Bit and rsyslog
(the runner pins itself, so every process it starts inherits the core). The shared-cores run, where
everything competes for both cores, is kept beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from benchmarks.cases.common import (
    Context,
    Throttle,
    bulk_stats,
    mib,
    scrape,
    shipping_settings,
    start_aggregator,
    start_shipper,
)
from benchmarks.loader import bulk_bodies, ceiling, steady_rate
from benchmarks.node import BenchNode
from benchmarks.peers import filebeat, fluentbit, rsyslog
from benchmarks.procs import Measured, free_port
from benchmarks.sinks import start_sink
from benchmarks.workload import FileSet, prewrite

PATTERN = "logstash-logs-*"


STALL_S = 20.0  # no new document for this long: the agent has delivered all it is going to


def watch_count(
    ctx: Context, node: BenchNode, pattern: str, total: int, procs: list[Measured], label: str, case: str = "c"
) -> tuple[list[tuple[float, int]], float, int]:
    """(timeline of (seconds since start, count), seconds to the last new document, final count).

    Stops at `total`, or when the count has not moved for STALL_S seconds (the caller decides what
    a shortfall means), or at a deadline."""
    t0 = time.monotonic()
    timeline: list[tuple[float, int]] = []
    progress = Throttle(ctx, case)
    deadline = t0 + max(180.0, total / 500)
    n = last_n = 0
    last_change = 0.0
    while time.monotonic() < deadline:
        n = node.count(pattern)
        now = time.monotonic() - t0
        timeline.append((now, n))
        if n != last_n:
            last_n, last_change = n, now
        if n >= total or (n > 0 and now - last_change > STALL_S):
            return timeline, last_change, n
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{label}: {p.name} exited: {p.log_tail()}")
        progress(f"{label}: {n:,}/{total:,} docs")
        time.sleep(0.25)
    raise RuntimeError(f"{label}: only {n:,} of {total:,} documents after {deadline - t0:.0f} s")


def watched_load(
    ctx: Context,
    node: Any,
    pattern: str,
    total: int,
    label: str,
    load: Callable[[], Awaitable[dict[str, Any]]],
    case: str = "c",
) -> dict[str, Any]:
    """Run the loader `load` in a thread while this thread watches `_count` exactly as an agent's run is
    watched; the rates are the searchable ones, the loader's own (acknowledged) ones are kept beside.

    The watch is not only a clock: a shard that nobody searches for 30 s goes search-idle and stops
    refreshing, and the searches cost CPU too: unwatched, the loader indexed 1-56% faster on this node
    (four alternated runs) than watched. Measured the same way, the ratio compares like with like."""
    result: dict[str, Any] = {}
    failure: list[BaseException] = []

    def send() -> None:
        try:
            result.update(asyncio.run(load()))
        except BaseException as exc:  # surfaced below, after the watch has seen the stall
            failure.append(exc)

    loader = threading.Thread(target=send, name="ceiling-loader", daemon=True)
    loader.start()
    try:
        timeline, seconds, n = watch_count(ctx, node, pattern, total, [], label, case)
    finally:
        loader.join()
    if failure:
        raise failure[0]
    if n < total:
        raise RuntimeError(f"{label}: {n:,} of {total:,} documents searchable, none new for {STALL_S:.0f} s")
    acked = {f"acked_{k}": result.pop(k) for k in ("seconds", "docs_per_s", "steady_docs_per_s") if k in result}
    return {
        **result,
        **acked,
        "seconds": round(seconds, 3),
        "docs_per_s": total / seconds if seconds else 0.0,
        "steady_docs_per_s": steady_rate(timeline, total),
        "timeline": [(round(t, 2), c) for t, c in timeline],
    }


def record(ctx: Context, fs: FileSet) -> Any:
    work = ctx.dir("c-record")
    path = work / "events.ndjson"
    sink = start_sink("lumberjack", free_port(), work, record=path)
    try:
        proc = start_shipper(ctx, fs.glob, sink.port, work)
        try:
            if not sink.wait_events(fs.lines, max(120.0, fs.lines / 2000)):
                raise RuntimeError(f"recording pass: {sink.events:,} of {fs.lines:,} events\n{proc.log_tail()}")
        finally:
            proc.stop()
    finally:
        sink.stop()
    return path


def pipeline(ctx: Context, node: BenchNode, fs: FileSet, agent: str, tag: str = "") -> dict[str, Any]:
    work = ctx.dir(f"c-{agent}{tag}")  # its own registry: a shipper resuming at the end sends nothing
    node.delete(PATTERN)
    agg, port = start_aggregator(ctx, node.url, work)
    node_cpu, node_wait = node.cpu_and_wait()
    try:
        if agent == "logship":
            agent_proc = start_shipper(ctx, fs.glob, port, work)
        else:
            agent_proc = filebeat.start(ctx, fs.glob, f"127.0.0.1:{port}", work, 0, agent=agent)
        try:
            timeline, seconds, n = watch_count(
                ctx, node, PATTERN, fs.lines, [agg, agent_proc], f"{agent} -> aggregator"
            )
            if n < fs.lines:
                raise RuntimeError(
                    f"{agent} -> aggregator: {n:,} of {fs.lines:,} documents, none new for {STALL_S:.0f} s"
                )
        finally:
            agent_proc.stop()
        cpu_now, wait_now = node.cpu_and_wait()
        node_cpu, node_wait = cpu_now - node_cpu, wait_now - node_wait
        bulks = bulk_stats(scrape(agg.metrics_port))
    finally:
        agg.stop()
    final = node.count(PATTERN, refresh=True)
    return {
        "agent": agent,
        "docs": fs.lines,
        "docs_indexed": final,
        "seconds": round(seconds, 3),
        "docs_per_s": fs.lines / seconds,
        "steady_docs_per_s": steady_rate(timeline, fs.lines),
        "agent_rss_peak_mib": mib(agent_proc.peak_rss()),
        "aggregator_rss_peak_mib": mib(agg.peak_rss()),
        # CPU of each process on the shared cores while the documents went in: what logship (or the
        # peer) spent is CPU OpenSearch did not get
        "agent_cpu_s": round(agent_proc.samples[-1].cpu, 2) if agent_proc.samples else None,
        "aggregator_cpu_s": round(agg.samples[-1].cpu, 2) if agg.samples else None,
        "opensearch_cpu_s": round(node_cpu, 2),
        "opensearch_runqueue_wait_s": round(node_wait, 2),
        **bulks,
        "timeline": [(round(t, 2), n) for t, n in timeline],
    }


def rsyslog_pipeline(ctx: Context, node: BenchNode, fs: FileSet, tag: str = "") -> dict[str, Any]:
    assert ctx.peers.rsyslogd is not None
    work = ctx.dir(f"c-rsyslog{tag}")
    node.delete(rsyslog.INDEX)
    p = ctx.profile
    proc = rsyslog.start(ctx.peers.rsyslogd, fs.glob, node.url, work, p.bulk_max_docs, p.bulk_max_bytes)
    return _own_index_run(ctx, node, fs, proc, "rsyslog", "rsyslog", rsyslog.INDEX)


def fluentbit_pipeline(ctx: Context, node: BenchNode, fs: FileSet, tag: str = "") -> dict[str, Any]:
    """Fluent Bit's tail -> opensearch output into its own index (dynamic mapping: its documents carry
    `log`, `stream`, `time` and `@timestamp`), as many bulk requests in flight as the aggregator."""
    work = ctx.dir(f"c-fluentbit{tag}")
    node.delete(fluentbit.INDEX)
    proc, _ = fluentbit.start(ctx, fs.glob, work, opensearch_url=node.url, flush=ctx.profile.bulk_max_delay)
    return _own_index_run(ctx, node, fs, proc, "fluentbit", "fluent-bit", fluentbit.INDEX)


def _own_index_run(
    ctx: Context, node: BenchNode, fs: FileSet, proc: Measured, agent: str, label: str, index: str
) -> dict[str, Any]:
    """A peer that writes to OpenSearch itself, into `index`: watch the count until every line is
    there (or the case gives up), stop it, and report its figures beside logship's."""
    node_cpu = node.cpu_seconds()
    try:
        timeline, seconds, _ = watch_count(ctx, node, index, fs.lines, [proc], label)
        node_cpu = node.cpu_seconds() - node_cpu
    finally:
        proc.stop()
    final = node.count(index, refresh=True)
    node.delete(index)
    if final < fs.lines:
        ctx.say("c", f"{label}: {fs.lines - final:,} of {fs.lines:,} lines never reached OpenSearch")
    return {
        "agent": agent,
        "docs": fs.lines,
        "docs_indexed": final,
        "docs_missing": fs.lines - final,
        "seconds": round(seconds, 3),
        "docs_per_s": final / seconds,
        "steady_docs_per_s": steady_rate(timeline, final),
        "agent_rss_peak_mib": mib(proc.peak_rss()),
        "agent_cpu_s": round(proc.samples[-1].cpu, 2) if proc.samples else None,
        "opensearch_cpu_s": round(node_cpu, 2),
        "timeline": [(round(t, 2), n) for t, n in timeline],
    }


def ceiling_bodies(ctx: Context, fs: FileSet) -> tuple[list[tuple[int, bytes]], int]:
    """The shipper's documents for `fs`, recorded once, as `_bulk` bodies for the ceiling loader."""
    recorded = record(ctx, fs)
    try:
        return bulk_bodies(recorded, ctx.profile.bulk_max_docs, ctx.profile.bulk_max_bytes)
    finally:
        recorded.unlink()


def prime(ctx: Context, node: BenchNode, bodies: list[tuple[int, bytes]]) -> None:
    """Install logship's index template (an aggregator start does it) and warm the node's JVM with a
    quarter of the documents, not counted: a cold JVM indexes far slower until it has compiled."""
    work = ctx.dir("c-prime")
    agg, _ = start_aggregator(ctx, node.url, work, name="aggregator-prime")
    agg.stop()
    ctx.say("c", "warming up the node (not counted)")
    asyncio.run(ceiling(node.url, bodies[: max(1, len(bodies) // 4)], ctx.profile.bulk_concurrency))
    node.delete(PATTERN)


@contextlib.contextmanager
def pinned(ctx: Context, node: BenchNode) -> Iterator[tuple[int, int]]:
    """OpenSearch on the first core, this runner (and every process it starts) on the last one."""
    cores = sorted(os.sched_getaffinity(0))
    node_core, agent_core = cores[0], cores[-1]
    before = os.sched_getaffinity(0)
    node.pin({node_core})
    os.sched_setaffinity(0, {agent_core})
    try:
        yield node_core, agent_core
    finally:
        os.sched_setaffinity(0, before)
        with contextlib.suppress(Exception):
            node.pin(set(cores))


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    node = ctx.node
    assert node is not None
    ctx.say("c", f"writing {p.c_lines:,} lines into {p.c_files} files")
    fs = prewrite(ctx.dir("files-c"), p.c_files, p.c_lines, p.line_bytes)
    ctx.say("c", "recording the shipper's documents for the ceiling loader")
    bodies, docs = ceiling_bodies(ctx, fs)
    prime(ctx, node, bodies)
    out = compare(ctx, node, fs, bodies, docs, "shared cores")
    if p.c_fair and len(os.sched_getaffinity(0)) >= 2:
        with pinned(ctx, node) as (node_core, agent_core):
            ctx.say("c", f"fair case: OpenSearch on core {node_core}, each agent in turn on core {agent_core}")
            fair_ctx = dataclasses.replace(ctx, profile=dataclasses.replace(p, c_connection_variants=()))
            out["fair"] = compare(fair_ctx, node, fs, bodies, docs, "fair", tag="-fair")
            out["fair"]["cores"] = {"opensearch": node_core, "agents": agent_core}
    return out


def compare(
    ctx: Context, node: BenchNode, fs: FileSet, bodies: list[tuple[int, bytes]], docs: int, label: str, tag: str = ""
) -> dict[str, Any]:
    """The ceiling, logship and the peers into the node, one after the other."""
    p = ctx.profile
    attempts = []

    def measure_ceiling() -> None:
        ctx.say("c", f"{label}: ceiling: {docs:,} docs in {len(bodies)} bulk bodies, {p.bulk_concurrency} in flight")
        node_cpu, node_wait = node.cpu_and_wait()
        attempt = watched_load(
            ctx, node, PATTERN, docs, f"{label}: ceiling", lambda: ceiling(node.url, bodies, p.bulk_concurrency)
        )
        cpu_now, wait_now = node.cpu_and_wait()
        attempt["opensearch_cpu_s"] = round(cpu_now - node_cpu, 2)
        attempt["opensearch_runqueue_wait_s"] = round(wait_now - node_wait, 2)
        attempt["docs_indexed"] = node.count(PATTERN, refresh=True)
        node.delete(PATTERN)
        attempts.append(attempt)

    if p.c_ceiling_runs > 1:
        measure_ceiling()  # one before and the rest after logship: neither side gets the warmer node
    ctx.say("c", f"{label}: logship: files -> shipper -> aggregator -> OpenSearch")
    logship_row = pipeline(ctx, node, fs, "logship", tag=tag)
    ctx.say("c", f"{label}: logship: {logship_row['steady_docs_per_s']:,.0f} docs/s steady")
    node.delete(PATTERN)
    variants = []
    for n in p.c_connection_variants:
        # the same shipper with n connections to the aggregator (output.workers with loadbalance)
        ctx.say("c", f"{label}: logship with {n} connections to the aggregator")
        vctx = dataclasses.replace(ctx, profile=dataclasses.replace(p, shipper_connections=n))
        row = pipeline(vctx, node, fs, "logship", tag=f"{tag}-{n}conn")
        row["shipper_connections"] = n
        variants.append(row)
        node.delete(PATTERN)
    while len(attempts) < p.c_ceiling_runs:
        measure_ceiling()
    ceil = max(attempts, key=lambda x: x["steady_docs_per_s"])
    ceil["attempts_steady_docs_per_s"] = [round(x["steady_docs_per_s"]) for x in attempts]
    ratio = logship_row["steady_docs_per_s"] / ceil["steady_docs_per_s"] if ceil["steady_docs_per_s"] else 0.0
    ctx.say("c", f"{label}: ceiling {ceil['steady_docs_per_s']:,.0f} docs/s; logship/ceiling = {ratio:.0%}")
    peers: list[dict[str, Any]] = []
    for agent, binary in (("filebeat", ctx.peers.filebeat), ("filebeat9", ctx.peers.filebeat9)):
        if binary:
            try:
                peers.append(pipeline(ctx, node, fs, agent, tag=tag))
            except RuntimeError as exc:
                peers.append({"agent": agent, "error": str(exc)})
            node.delete(PATTERN)
    if ctx.peers.fluentbit:
        try:
            peers.append(fluentbit_pipeline(ctx, node, fs, tag=tag))
        except RuntimeError as exc:
            peers.append({"agent": "fluentbit", "error": str(exc)})
    if ctx.peers.rsyslogd:
        try:
            peers.append(rsyslog_pipeline(ctx, node, fs, tag=tag))
        except RuntimeError as exc:
            peers.append({"agent": "rsyslog", "error": str(exc)})
    for row in peers:
        if "steady_docs_per_s" in row:
            row["logship_ratio"] = logship_row["steady_docs_per_s"] / max(row["steady_docs_per_s"], 1e-9)
            row["ratio_to_ceiling"] = row["steady_docs_per_s"] / max(ceil["steady_docs_per_s"], 1e-9)
            ctx.say("c", f"{label}: {row['agent']}: {row['steady_docs_per_s']:,.0f} docs/s; "
                    f"logship/{row['agent']} = {row['logship_ratio']:.2f}")  # fmt: skip
    return {
        "title": "files -> shipper -> aggregator -> OpenSearch, against the node's ceiling",
        "conditions": {
            **fs.describe(),
            **shipping_settings(p),
            "cores": label,
            "shipper_compression_level": 0,
            "index_template": "logship's (1 shard, 0 replicas); Fluent Bit, rsyslog: dynamic mapping",
            "rate": "steady = 10% -> 90% of the documents searchable (_count every 250 ms)",
            "ceiling": f"best of {p.c_ceiling_runs} loader run(s) (before/after logship); node warmed up first; "
            "rate watched by the same _count poll as the agents (acked_* = the loader's own clock)",
        },
        "logship": logship_row,
        "ceiling": ceil,
        "ratio_to_ceiling": ratio,
        "logship_variants": [
            {**v, "ratio_to_ceiling": v["steady_docs_per_s"] / ceil["steady_docs_per_s"]} for v in variants
        ],
        "peers": peers,
    }
