"""Aggregator -> the real OpenSearch, against the ceiling of the same node in the same run.

    .venv/bin/python -m benchmarks.aggregator_opensearch [--events 200000] [--rounds 2] [--connections 8]
        [--max-docs 5000] [--concurrency 2] [--url http://127.0.0.1:9211] [--keep-node]

1. A private node (`agg-bench` on port 9211, started with scripts/opensearch.sh unless --url is given).
2. Ceiling: a minimal loader POSTs the very documents the aggregator will send (same ids scheme, same
   bytes, pre-serialised into bulk bodies of --max-docs) with --concurrency requests in flight.
3. Aggregator: `logship aggregator` (the real CLI process, same bulk size and concurrency) fed by a
   Lumberjack load process whose windows are acked only once OpenSearch indexed them.
4. Ceiling again, and so on for --rounds: each aggregator run is compared with the mean of the two
   ceiling runs around it (the machine is shared; its load drifts).
A warm-up load (not counted) goes first: a fresh JVM indexes at half speed until it has compiled.

Targets: aggregator docs/s >= 90% of the ceiling; aggregator RSS <= 150 MiB at full load.
Indices are `bench-agg-<stamp>-*` and deleted at the end. Results: benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.aggregator_blackhole import PYTHON, ROOT, Sampler, free_port, machine, wait_port, write_result
from benchmarks.ljload import make_event

SCRIPT = ROOT / "scripts" / "opensearch.sh"
NODE = "agg-bench"
FILTER_PATH = "errors,items.*.status,items.*.error"


# --- the minimal loader: the node's ceiling ------------------------------------------------------------


def ceiling_bodies(run: str, index: str, events: int, max_docs: int) -> list[tuple[int, bytes]]:
    bodies = []
    for start in range(0, events, max_docs):
        parts = []
        n = min(max_docs, events - start)
        for i in range(start, start + n):
            doc = make_event(run, i)
            doc_id = doc.pop("@metadata")["_id"]
            parts.append(orjson.dumps({"create": {"_index": index, "_id": doc_id}}) + b"\n")
            parts.append(orjson.dumps(doc) + b"\n")
        bodies.append((n, b"".join(parts)))
    return bodies


async def ceiling(url: str, bodies: list[tuple[int, bytes]], concurrency: int) -> dict[str, Any]:
    queue = list(reversed(bodies))
    docs = 0
    errors = 0
    headers = {"content-type": "application/x-ndjson"}
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal docs, errors
            while queue:
                n, body = queue.pop()
                while True:
                    async with session.post(
                        f"{url}/_bulk", params={"filter_path": FILTER_PATH}, data=body, headers=headers
                    ) as r:
                        result = orjson.loads(await r.read())
                    if r.status == 200 and not result.get("errors"):
                        break
                    errors += 1  # resend the whole body (rare: only on overload)
                    await asyncio.sleep(0.5)
                docs += n

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.monotonic() - t0
    return {"docs": docs, "seconds": round(seconds, 3), "docs_per_s": round(docs / seconds), "retried_bodies": errors}


# --- the Lumberjack load process -------------------------------------------------------------------------


def load_main(port: int, run: str, events: int, connections: int, window: int) -> int:
    import uvloop

    from logship.lumberjack.client import LumberjackClient

    windows = [
        [orjson.dumps(make_event(run, i)) for i in range(start, min(events, start + window))]
        for start in range(0, events, window)
    ]
    acked = 0

    async def main() -> dict[str, Any]:
        nonlocal acked
        todo = list(reversed(windows))

        async def connection() -> None:
            nonlocal acked
            client = LumberjackClient([f"127.0.0.1:{port}"], compression_level=0, timeout=120)
            try:
                while todo:
                    w = todo.pop()
                    await client.send(w)
                    acked += len(w)
            finally:
                await client.close()

        t0, c0 = time.monotonic(), time.process_time()
        await asyncio.gather(*(connection() for _ in range(connections)))
        seconds = time.monotonic() - t0
        return {
            "events": acked,
            "seconds": round(seconds, 3),
            "events_per_s": round(acked / seconds),
            "cpu_seconds": round(time.process_time() - c0, 2),
        }

    sys.stdout.write(json.dumps(uvloop.run(main())) + "\n")
    return 0


# --- the run ---------------------------------------------------------------------------------------------


def node_pid(url: str | None) -> int | None:
    if url:
        return None
    out = subprocess.run([str(SCRIPT), "pid", "--name", NODE], capture_output=True, text=True)
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else None


class CpuMeter:
    """CPU seconds a process (OpenSearch) spends during one phase."""

    def __init__(self, pid: int | None) -> None:
        import psutil

        self.ps = psutil.Process(pid) if pid else None

    def now(self) -> float:
        if self.ps is None:
            return 0.0
        t = self.ps.cpu_times()
        return float(t.user + t.system)


def node_url(url: str | None, port: int) -> tuple[str, bool]:
    if url:
        return url.rstrip("/"), False
    running = subprocess.run([str(SCRIPT), "status", "--name", NODE], capture_output=True).returncode == 0
    if not running:
        print(f"starting private OpenSearch node {NODE} on port {port} ...")
        subprocess.run([str(SCRIPT), "start", "--name", NODE, "--port", str(port)], check=True, capture_output=True)
    out = subprocess.run([str(SCRIPT), "url", "--name", NODE], check=True, capture_output=True, text=True)
    return out.stdout.strip(), not running


async def prepare(url: str, prefix: str) -> None:
    from opensearchpy import AsyncOpenSearch

    from aggregator.template import install_template

    client = AsyncOpenSearch(hosts=[url], timeout=60)
    try:
        # the same mapping for the ceiling and the aggregator's indices; one node: no replicas
        await install_template(client, f"{prefix}tmpl", [f"{prefix}*"], 1, 0)
    finally:
        await client.close()


async def cleanup(url: str, prefix: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.delete(f"{url}/{prefix}*?expand_wildcards=all"):
            pass
        async with s.delete(f"{url}/_index_template/{prefix}tmpl"):
            pass


def run_aggregator(url: str, prefix: str, run: str, a: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port, http_port = free_port(), free_port()
    cfg = workdir / "aggregator.yml"
    cfg.write_text(
        json.dumps(
            {
                "aggregator": {
                    "listen": {"host": "127.0.0.1", "port": port},
                    "routes": [{"tag": "containers", "index": f"{prefix}run-%{{+YYYY.MM.dd}}"}],
                    "default_index": f"{prefix}unrouted-%{{+YYYY.MM.dd}}",
                    "opensearch": {"hosts": [url]},
                    "bulk": {"max_docs": a.max_docs, "concurrency": a.concurrency, "gzip": a.gzip},
                    "template": {"install": False},
                    "dead_letter": {"path": str(workdir / "dlq.ndjson")},
                    "http": {"host": "127.0.0.1", "port": http_port},
                }
            }
        )
    )
    log = open(workdir / "aggregator.log", "wb")
    agg = subprocess.Popen([PYTHON, "-m", "logship", "aggregator", "-c", str(cfg)], cwd=ROOT, stderr=log)
    try:
        wait_port(port, agg)
        sampler = Sampler(agg.pid).start()
        idle_rss = sampler.ps.memory_info().rss
        cpu0 = sampler.cpu()
        loader = subprocess.run(
            [
                PYTHON,
                "-m",
                "benchmarks.aggregator_opensearch",
                "--load",
                str(port),
                "--run",
                run,
                "--events",
                str(a.events),
                "--connections",
                str(a.connections),
                "--window",
                str(a.window),
            ],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=3600,
        )
        cpu = sampler.cpu() - cpu0
        sampler.stop()
        result = json.loads(loader.stdout.decode().strip().splitlines()[-1])
        bulk = bulk_metrics(http_port)
    finally:
        agg.send_signal(signal.SIGTERM)
        rc = agg.wait(60)
        log.close()
    return {
        "docs": result["events"],
        "seconds": result["seconds"],
        "docs_per_s": result["events_per_s"],
        "aggregator_exit": rc,
        "load_client_cpu_seconds": result["cpu_seconds"],
        "aggregator_cpu_seconds": round(cpu, 2),
        "aggregator_cpu_per_event_us": round(cpu / max(1, result["events"]) * 1e6, 2),
        "aggregator_rss_idle_mib": round(idle_rss / 2**20, 1),
        "aggregator_rss_peak_mib": round(max(sampler.rss, default=0) / 2**20, 1),
        "bulk_requests": bulk["count"],
        "bulk_docs_mean": round(bulk["docs"] / max(1, bulk["count"])),
        "bulk_latency_mean_s": round(bulk["latency"] / max(1, bulk["count"]), 3),
        # share of the time the `concurrency` request slots had a bulk in flight
        "slot_utilisation": round(bulk["latency"] / (a.concurrency * result["seconds"]), 3),
    }


def bulk_metrics(http_port: int) -> dict[str, float]:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        for key, name in (
            ("count", "logship_aggregator_bulk_latency_seconds_count "),
            ("latency", "logship_aggregator_bulk_latency_seconds_sum "),
            ("docs", "logship_aggregator_bulk_docs_sum "),
        ):
            if line.startswith(name):
                values[key] = float(line.split()[-1])
    return values


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.aggregator_opensearch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", "200000")))
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--window", type=int, default=2048)
    p.add_argument("--max-docs", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--gzip", action="store_true")
    p.add_argument("--rounds", type=int, default=2, help="aggregator runs, each between two ceiling runs")
    p.add_argument("--url", help="an OpenSearch to use instead of the private node")
    p.add_argument("--port", type=int, default=9211, help="port of the private node")
    p.add_argument("--keep-node", action="store_true", help="leave the private node running")
    p.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--run", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.load is not None:
        return load_main(a.load, a.run, a.events, a.connections, a.window)

    url, started = node_url(a.url, a.port)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    prefix = f"bench-agg-{stamp}-"
    workdir = Path(f"/tmp/logship-bench-{stamp}")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(prepare(url, prefix))
        print(f"node {url}; {a.events:,} docs per phase, bulk {a.max_docs} docs x {a.concurrency} in flight")
        warm = max(a.max_docs * 4, a.events // 3)
        print(f"warm-up: {warm:,} docs (a fresh node is slow until the JVM has compiled its hot paths) ...")
        w = asyncio.run(ceiling(url, ceiling_bodies("warm", f"{prefix}warmup", warm, a.max_docs), a.concurrency))
        print(f"  {w['docs_per_s']:,} docs/s (not counted)")
        ceilings: list[dict[str, Any]] = []
        aggs: list[dict[str, Any]] = []

        meter = CpuMeter(node_pid(a.url))

        def run_ceiling(n: int) -> None:
            bodies = ceiling_bodies(f"ceil{n}", f"{prefix}ceiling-{n}", a.events, a.max_docs)
            print(f"ceiling run {n}: minimal loader ...")
            cpu0 = meter.now()
            c = asyncio.run(ceiling(url, bodies, a.concurrency))
            c["opensearch_cpu_per_doc_us"] = round((meter.now() - cpu0) / c["docs"] * 1e6, 1)
            c["opensearch_cores_used"] = round((meter.now() - cpu0) / c["seconds"], 2)
            ceilings.append(c)
            print(
                f"  {c['docs_per_s']:,} docs/s ({c['docs']:,} in {c['seconds']}s); OpenSearch used "
                f"{c['opensearch_cores_used']} cores, {c['opensearch_cpu_per_doc_us']} us CPU/doc"
            )

        # ceiling, aggregator, ceiling, aggregator, ... ceiling: each aggregator run between two ceilings
        run_ceiling(1)
        for n in range(1, a.rounds + 1):
            print(f"aggregator run {n}: logship aggregator fed over Lumberjack ...")
            cpu0 = meter.now()
            agg = run_aggregator(url, prefix, f"agg{n}", a, workdir)
            agg["opensearch_cpu_per_doc_us"] = round((meter.now() - cpu0) / agg["docs"] * 1e6, 1)
            agg["opensearch_cores_used"] = round((meter.now() - cpu0) / agg["seconds"], 2)
            aggs.append(agg)
            print(
                f"  {agg['docs_per_s']:,} docs/s ({agg['docs']:,} in {agg['seconds']}s); RSS peak "
                f"{agg['aggregator_rss_peak_mib']} MiB; {agg['aggregator_cpu_per_event_us']} us CPU/event; "
                f"OpenSearch used {agg['opensearch_cores_used']} cores, {agg['opensearch_cpu_per_doc_us']} us CPU/doc; "
                f"{agg['bulk_requests']} bulks of {agg['bulk_docs_mean']} docs, {agg['bulk_latency_mean_s']}s each, "
                f"slots busy {agg['slot_utilisation']:.0%}"
            )
            run_ceiling(n + 1)
        ratios = [
            agg["docs_per_s"] / ((ceilings[i]["docs_per_s"] + ceilings[i + 1]["docs_per_s"]) / 2)
            for i, agg in enumerate(aggs)
        ]
        ratio = sum(ratios) / len(ratios)
        reference = sum(c["docs_per_s"] for c in ceilings) / len(ceilings)
        rss_peak = max(agg["aggregator_rss_peak_mib"] for agg in aggs)
        result = {
            "benchmark": "aggregator_opensearch",
            "command": "python -m benchmarks.aggregator_opensearch "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "params": {k: v for k, v in vars(a).items() if k not in ("load", "run")},
            "opensearch": url,
            "warmup": w,
            "ceiling_runs": ceilings,
            "ceiling_docs_per_s_mean": round(reference),
            "aggregator_runs": aggs,
            "aggregator_docs_per_s_mean": round(sum(x["docs_per_s"] for x in aggs) / len(aggs)),
            "ratio_each_to_neighbouring_ceilings": [round(r, 3) for r in ratios],
            "ratio_to_ceiling": round(ratio, 3),
            "aggregator_rss_peak_mib": rss_peak,
            "target_ratio": 0.9,
            "target_rss_mib": 150,
            "machine": machine(),
        }
        print(
            f"aggregator / ceiling = {ratio:.1%} (each run vs the ceilings around it: "
            f"{', '.join(f'{r:.0%}' for r in ratios)}; target >= 90%: {'met' if ratio >= 0.9 else 'NOT met'}); "
            f"RSS peak {rss_peak} MiB (target <= 150: {'met' if rss_peak <= 150 else 'NOT met'})"
        )
        print(f"results: {write_result('aggregator_opensearch', result)}")
        return 0
    finally:
        asyncio.run(cleanup(url, prefix))
        if started and not a.keep_node:
            subprocess.run([str(SCRIPT), "stop", "--name", NODE], capture_output=True)


if __name__ == "__main__":
    raise SystemExit(main())
