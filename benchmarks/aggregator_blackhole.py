"""Aggregator throughput without OpenSearch: Lumberjack clients -> aggregator pipeline -> blackhole sink.

    .venv/bin/python -m benchmarks.aggregator_blackhole [--events 1000000] [--loaders 2]
        [--connections 4] [--window 2048] [--compression 0]

The aggregator runs in its own process (`serve` below: the real Aggregator with its server, routing,
encoding and batching, only the sink replaced by one that accepts every bulk at once); the shippers
are `benchmarks.ljload` processes (pre-built events shaped like the shipper's, each window acked end to
end). Events/s is every acked event over the wall time of the whole send; RSS and CPU of the
aggregator are sampled throughout. Target: >= 250,000 events/s per core. Results: benchmarks/results/.

    .venv/bin/python -m benchmarks.aggregator_blackhole --encode-only [--rounds 40] [--window 2048]

measures this package's own share in process, without sockets: CPU time per event of `orjson.loads`,
`Encoder.encode` and batching + body join for windows of ljload events (best window of `--rounds`;
CPU time, so far less sensitive to other processes than wall throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"aggregator exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


class Sampler:
    """RSS and CPU of one process, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.ps = psutil.Process(pid)
        self.interval = interval
        self.rss: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.rss.append(self.ps.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_loaders(
    port: int, events: int, loaders: int, connections: int, window: int, compression: int
) -> dict[str, Any]:
    """Start `loaders` ljload processes splitting `events`; returns totals over the slowest one."""
    share = events // loaders
    procs = [
        subprocess.Popen(
            [
                PYTHON,
                "-m",
                "benchmarks.ljload",
                "--port",
                str(port),
                "--events",
                str(share),
                "--connections",
                str(connections),
                "--window",
                str(window),
                "--compression",
                str(compression),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        for _ in range(loaders)
    ]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"load client exited with {p.returncode}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    acked = sum(r["events"] for r in results)
    seconds = max(r["seconds"] for r in results)
    return {
        "events": acked,
        "seconds": seconds,
        "events_per_s": acked / seconds,
        "event_bytes": results[0]["event_bytes"],
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
    }


def encode_only(window: int, rounds: int) -> dict[str, Any]:
    """Best CPU µs per event of each step, for both ways a window is read: every event decoded into a
    dict (`loads`, `encode`: what other shippers' events take) and logship shipper events kept as bytes
    (`splice`, `encode_spliced`: aggregator/splice.py)."""
    import gc

    import orjson

    from aggregator.accumulator import Accumulator, Ticket
    from aggregator.bulk import Encoder, body_of
    from aggregator.routing import Router
    from aggregator.splice import decode_window
    from benchmarks.ljload import event

    raw = [event(i, 400) for i in range(window)]
    encoder = Encoder(Router([("containers", "logstash-logs-app-%{+YYYY.MM.dd}")], "logstash-logs-%{+YYYY.MM.dd}"))
    acc = Accumulator(5 * 2**20, 5000)
    gc.freeze()  # as app.tune_gc() does
    gc.set_threshold(50000, 20, 20)
    steps = ("loads", "encode", "splice", "encode_spliced", "batch_body")
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        t0 = time.process_time_ns()
        events = [orjson.loads(r) for r in raw]
        t1 = time.process_time_ns()
        encoder.encode(events, datetime.now(UTC), Ticket(len(events)))
        t2 = time.process_time_ns()
        spliced, _ = decode_window(raw)
        t3 = time.process_time_ns()
        items = encoder.encode(spliced, datetime.now(UTC), Ticket(len(spliced)))
        t4 = time.process_time_ns()
        for batch in acc.add_many(items, 0.0):
            body_of(batch)
        body_of(acc.take())
        t5 = time.process_time_ns()
        for key, ns in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            best[key] = min(best[key], ns / window / 1000)
    return {k: round(v, 3) for k, v in best.items()}


# --- the aggregator process -------------------------------------------------------------------------


def serve(port: int, queue_max_events: int, max_docs: int, concurrency: int) -> int:
    import uvloop

    from aggregator.app import Aggregator
    from aggregator.config import AggregatorConfig

    cfg = AggregatorConfig.from_dict(
        {
            "listen": {"host": "127.0.0.1", "port": port},
            "queue_max_events": queue_max_events,
            "bulk": {"max_docs": max_docs, "concurrency": concurrency},
            "dead_letter": {"path": "/tmp/logship-bench-blackhole-dlq.ndjson"},
            "http": {"host": "127.0.0.1", "port": 0},
        }
    )

    async def main() -> None:
        agg = Aggregator(cfg, blackhole=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await agg.start()
        await stop.wait()
        await agg.shutdown()
        sys.stdout.write(json.dumps({"docs": agg.sink.docs}) + "\n")  # type: ignore[attr-defined]

    uvloop.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.aggregator_blackhole", description=__doc__)
    p.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", "1000000")))
    p.add_argument("--loaders", type=int, default=1, help="load client processes")
    p.add_argument("--connections", type=int, default=8, help="connections per load client")
    p.add_argument("--window", type=int, default=2048)
    p.add_argument("--compression", type=int, default=0)
    p.add_argument("--queue-max-events", type=int, default=50000)
    p.add_argument("--max-docs", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--encode-only", action="store_true", help="in process: CPU per event of loads/encode/batch")
    p.add_argument("--rounds", type=int, default=40, help="windows timed with --encode-only (the best counts)")
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.encode_only:
        us = encode_only(a.window, a.rounds)
        print(
            f"in process, best of {a.rounds} windows of {a.window}: decoded: loads {us['loads']} + encode "
            f"{us['encode']} us/event; kept as bytes: splice {us['splice']} + encode {us['encode_spliced']} "
            f"us/event; batch+body {us['batch_body']} us/event"
        )
        result = {"benchmark": "aggregator_encode", "params": vars(a), "cpu_us_per_event": us, "machine": machine()}
        print(f"  results: {write_result('aggregator_encode', result)}")
        return 0
    if a.serve is not None:
        return serve(a.serve, a.queue_max_events, a.max_docs, a.concurrency)

    port = free_port()
    agg = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "benchmarks.aggregator_blackhole",
            "--serve",
            str(port),
            "--queue-max-events",
            str(a.queue_max_events),
            "--max-docs",
            str(a.max_docs),
            "--concurrency",
            str(a.concurrency),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        wait_port(port, agg)
        sampler = Sampler(agg.pid).start()
        idle_rss = sampler.ps.memory_info().rss
        cpu0 = sampler.cpu()
        print(
            f"aggregator (blackhole sink) on :{port}; sending {a.events:,} events from {a.loaders} "
            f"load processes x {a.connections} connections, window {a.window}, compression {a.compression}"
        )
        load = run_loaders(port, a.events, a.loaders, a.connections, a.window, a.compression)
        cpu = sampler.cpu() - cpu0
        sampler.stop()
    finally:
        agg.send_signal(signal.SIGTERM)
        out, _ = agg.communicate(timeout=60)
    sunk = json.loads(out.decode().strip().splitlines()[-1])["docs"] if out.strip() else None
    result = {
        "benchmark": "aggregator_blackhole",
        "command": "python -m benchmarks.aggregator_blackhole " + " ".join(argv if argv is not None else sys.argv[1:]),
        "params": vars(a) | {"serve": None},
        "events_acked": load["events"],
        "events_sunk": sunk,
        "seconds": round(load["seconds"], 3),
        "events_per_s": round(load["events_per_s"]),
        "event_bytes": load["event_bytes"],
        "aggregator_cpu_seconds": round(cpu, 2),
        "aggregator_cpu_per_event_us": round(cpu / max(1, load["events"]) * 1e6, 2),
        "aggregator_rss_idle_mib": round(idle_rss / 2**20, 1),
        "aggregator_rss_peak_mib": round(max(sampler.rss, default=0) / 2**20, 1),
        "target_events_per_s": 250000,
        "machine": machine(),
    }
    print(
        f"  {result['events_per_s']:,} events/s ({load['events']:,} acked in {load['seconds']:.2f}s, "
        f"{load['event_bytes']} B/event; sink took {sunk:,})"
    )
    print(
        f"  aggregator: {result['aggregator_cpu_per_event_us']} us CPU/event, RSS idle "
        f"{result['aggregator_rss_idle_mib']} MiB, peak {result['aggregator_rss_peak_mib']} MiB"
    )
    print(f"  target >= 250,000 events/s: {'met' if result['events_per_s'] >= 250000 else 'NOT met'}")
    print(f"  results: {write_result('aggregator_blackhole', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
