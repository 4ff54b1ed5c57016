"""The node's ceiling and the latency probe, both talking to OpenSearch with aiohttp directly.

Ceiling: the documents the shipper produced (recorded by a sink) are turned into `_bulk` bodies by
the aggregator's own encoder, so action lines, ids and bytes are exactly the aggregator's, cut at
the same max docs / max bytes, and sent with the same number of requests in flight. Nothing is
parsed or built while the clock runs: it is the most this node can take from one client.

Latency: probe lines carry a token and a sequence number; the poller searches for the token every
100 ms and notes when each sequence number first becomes searchable.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from aggregator.accumulator import Ticket
from aggregator.bulk import Encoder, body_of
from aggregator.retry import FILTER_PATH
from aggregator.routing import Router

DEFAULT_ROUTES = [
    ("containers", "logstash-logs-containers-%{+YYYY.MM.dd}"),
    ("app", "logstash-logs-app-%{+YYYY.MM.dd}"),
]
DEFAULT_INDEX = "logstash-logs-unrouted-%{+YYYY.MM.dd}"


def bulk_bodies(recorded: Path, max_docs: int, max_bytes: int) -> tuple[list[tuple[int, bytes]], int]:
    """Bodies of (doc count, NDJSON bytes) from a file of recorded events, one JSON object a line."""
    encoder = Encoder(Router(DEFAULT_ROUTES, DEFAULT_INDEX))
    received = datetime.now(UTC)
    bodies: list[tuple[int, bytes]] = []
    docs = 0
    batch: list[Any] = []
    size = 0

    def cut() -> None:
        nonlocal batch, size
        if batch:
            bodies.append((len(batch), body_of(batch)))
            batch, size = [], 0

    with open(recorded, "rb") as f:
        for line in f:
            event = orjson.loads(line)
            (item,) = encoder.encode([event], received, Ticket(1))
            if batch and size + item.nbytes > max_bytes:
                cut()
            batch.append(item)
            size += item.nbytes
            docs += 1
            if len(batch) >= max_docs:
                cut()
    cut()
    return bodies, docs


async def ceiling(url: str, bodies: list[tuple[int, bytes]], concurrency: int) -> dict[str, Any]:
    """Send every body, `concurrency` at a time; returns docs/s over the whole send."""
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    done = 0
    errors = 0
    timeline: list[tuple[float, int]] = []
    latencies: list[float] = []
    headers = {"Content-Type": "application/x-ndjson"}
    endpoint = f"{url}/_bulk?filter_path={FILTER_PATH}"

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while not queue.empty():
            n, body = queue.get_nowait()
            while True:
                t_req = time.monotonic()
                async with session.post(endpoint, data=body, headers=headers) as resp:
                    payload = await resp.read()
                latencies.append(time.monotonic() - t_req)
                if resp.status == 429 or resp.status >= 500:
                    await asyncio.sleep(0.5)
                    continue
                break
            if resp.status != 200 or orjson.loads(payload).get("errors"):
                errors += 1
            done += n
            timeline.append((time.monotonic(), done))

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        t0 = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.monotonic() - t0
    total = sum(n for n, _ in bodies)
    return {
        "docs": total,
        "bulk_requests": len(bodies),
        "requests_with_errors": errors,
        "seconds": round(elapsed, 3),
        "docs_per_s": total / elapsed if elapsed > 0 else 0.0,
        "steady_docs_per_s": steady_rate([(t - t0, n) for t, n in timeline], total),
        "avg_docs_per_bulk": total / len(bodies) if bodies else None,
        "avg_bulk_latency_s": sum(latencies) / len(latencies) if latencies else None,
    }


def steady_rate(timeline: Iterable[tuple[float, int]], total: int) -> float:
    """Docs/s between 10% and 90% of `total`: start-up and the last partial batch left out.

    `timeline` holds (seconds since start, documents done so far)."""
    points = list(timeline)
    lo = next(((t, n) for t, n in points if n >= 0.1 * total), None)
    hi = next(((t, n) for t, n in points if n >= 0.9 * total), None)
    if lo is not None and hi is not None and hi[0] > lo[0]:
        return (hi[1] - lo[1]) / (hi[0] - lo[0])
    # too fast to see the middle (tiny runs): the overall rate, start to the last document
    end = next((t for t, n in points if n >= total), None)
    return total / end if end else 0.0


class LatencyPoller:
    """Notes when each probe sequence number first becomes searchable."""

    def __init__(self, url: str, token: str, index_pattern: str = "logstash-logs-*", field: str = "message") -> None:
        self.url = url
        self.token = token
        self.pattern = index_pattern
        self.field = field  # the document field that holds the line
        self.seen: dict[int, float] = {}

    async def poll(self, stop: asyncio.Event, interval: float = 0.1) -> None:
        f = self.field
        query = orjson.dumps({"size": 10000, "_source": [f], "query": {"match": {f: self.token}}})
        endpoint = (
            f"{self.url}/{self.pattern}/_search?filter_path=hits.hits._source.{f}"
            "&ignore_unavailable=true&allow_no_indices=true"
        )
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            while not stop.is_set():
                try:
                    async with session.post(endpoint, data=query, headers=headers) as resp:
                        payload = orjson.loads(await resp.read()) if resp.status == 200 else {}
                except (aiohttp.ClientError, TimeoutError):
                    payload = {}
                now = time.time()
                for hit in payload.get("hits", {}).get("hits", []):
                    seq = _probe_seq(hit.get("_source", {}).get(f, ""))
                    if seq is not None and seq not in self.seen:
                        self.seen[seq] = now
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except TimeoutError:
                    pass


def _probe_seq(message: str) -> int | None:
    for part in message.split():
        if part.startswith("seq="):
            try:
                return int(part[4:])
            except ValueError:
                return None
    return None


def percentiles(values: list[float], points: Iterable[float] = (50, 90, 99)) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    out: dict[str, float] = {}
    for p in points:
        k = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))  # nearest rank
        out[f"p{p:g}"] = ordered[k]
    out["max"] = ordered[-1]
    return out
