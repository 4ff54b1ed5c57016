"""A Lumberjack v2 load client in its own process: the sender of case b.

    python -m benchmarks.ljload --port P --events N [--connections C] [--window W] [--compression Z]
                                [--pending K]

Events are shaped like the shipper's (SPEC section 4, about 600 bytes of JSON ending with a
`@metadata._id`), built before the clock starts. Each connection sends whole windows and waits for
the final ack (which the aggregator sends only once its sink took every event), so events/s is
what the aggregator accepted end to end. Prints one JSON line with the result.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from logship.lumberjack import LumberjackClient

POOL_WINDOWS = 32


def make_event(run: str, i: int, message_bytes: int = 185, src: str | None = None) -> dict[str, Any]:
    """The shipper's event shape (SPEC section 4), about 650 bytes of JSON, `@metadata` last as the shipper
    writes it (so the aggregator can splice it, see aggregator/splice.py) with an id of letters and digits."""
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    marker = f"run={run} src={src} seq={i} " if src else f"run={run} seq={i} "
    return {
        "@timestamp": ts,
        "message": marker + "x" * max(0, message_bytes - 30),
        "tags": ["containers"],
        "stream": "stdout",
        "log": {"file": {"path": "/var/log/containers/web-7c9d_shop_web-0123456789ab.log"}, "offset": i * 256},
        "kubernetes": {
            "pod": {"name": "web-7c9d"},
            "namespace": "shop",
            "container": {"name": "web"},
            "node": {"name": "bench-node"},
        },
        "container": {"id": "0123456789ab", "runtime": "docker"},
        "host": {"name": "bench-node"},
        "agent": {"type": "logship", "version": "bench"},
        "@metadata": {"_id": "".join(c for c in run if c.isalnum()) + f"{i:012d}"},
    }


def event(i: int, message_bytes: int) -> bytes:
    return orjson.dumps(make_event("bench", i, message_bytes, src="ljload"))


async def run(
    port: int, events: int, connections: int, window: int, compression: int, size: int, pending: int = 1
) -> dict[str, Any]:
    pool = [[event(w * window + i, size) for i in range(window)] for w in range(POOL_WINDOWS)]
    windows = (events + window - 1) // window
    next_window = 0
    acked = 0

    async def sender(client: LumberjackClient) -> None:
        nonlocal next_window, acked
        while next_window < windows:
            w = next_window
            next_window += 1
            batch = pool[w % POOL_WINDOWS]
            if w == windows - 1 and events % window:
                batch = batch[: events % window]
            await client.send(batch)
            acked += len(batch)

    async def connection() -> None:
        # `pending` windows in flight on one connection, as a shipper with max_pending_windows does
        client = LumberjackClient(
            [f"127.0.0.1:{port}"], compression_level=compression, timeout=60, max_pending_windows=pending
        )
        try:
            await asyncio.gather(*(sender(client) for _ in range(pending)))
        finally:
            await client.close()

    started = time.time()  # wall clock: the runner lines up several load processes by it
    t0 = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(connections)))
    seconds = time.monotonic() - t0
    return {"events": acked, "seconds": seconds, "events_per_s": acked / seconds, "event_bytes": len(pool[0][0]),
            "started": started, "finished": started + seconds}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ljload")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--window", type=int, default=2048)
    p.add_argument("--compression", type=int, default=0)
    p.add_argument("--message-bytes", type=int, default=185)
    p.add_argument("--pending", type=int, default=1, help="windows in flight per connection (shipper default: 4)")
    a = p.parse_args(argv)
    import uvloop

    result = uvloop.run(run(a.port, a.events, a.connections, a.window, a.compression, a.message_bytes, a.pending))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
