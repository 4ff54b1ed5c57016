"""Blackhole receivers, each in its own process so they never share a core's GIL with the runner.

    python -m benchmarks.sinks lumberjack --port P [--record FILE]   # acks every window at once
    python -m benchmarks.sinks opensearch --port P                   # answers _bulk with success

(`benchmarks.shipper_blackhole --sink P` is a third one, a bare frame counter; `start_sink` runs all.)

Both print one JSON line of counters to stdout every 100 ms: {"events", "first", "last"} with wall
clock times of the first and latest event received. `--record` writes every received event as one
JSON line (the documents the ceiling loader replays).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from benchmarks.procs import PYTHON, Measured, spawn, wait_port


class Counters:
    def __init__(self) -> None:
        self.events = 0
        self.first = 0.0
        self.last = 0.0

    def add(self, n: int) -> None:
        now = time.time()
        if not self.first:
            self.first = now
        self.events += n
        self.last = now


async def _report(counters: Counters) -> None:
    """Print counters until SIGTERM, then return so the caller can close files."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    out = sys.stdout
    while not stop.is_set():
        out.write(orjson.dumps(counters.__dict__).decode() + "\n")
        out.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def _lumberjack(port: int, record: Path | None) -> None:
    from logship.lumberjack import Batch, LumberjackServer

    counters = Counters()
    sink: IO[bytes] | None = open(record, "wb") if record else None  # noqa: ASYNC230  (once, at start)
    dumps = orjson.dumps

    async def handle(batch: Batch) -> None:
        if sink is not None:
            sink.write(b"".join(dumps(e) + b"\n" for e in batch.events))
        counters.add(len(batch.events))

    server = LumberjackServer(handle, host="127.0.0.1", port=port)
    await server.start()
    try:
        await _report(counters)
    finally:
        if sink is not None:
            sink.close()


_ROOT = orjson.dumps(
    {
        "name": "blackhole",
        "cluster_name": "blackhole",
        "version": {"distribution": "opensearch", "number": "2.19.6"},
        "tagline": "The OpenSearch Project: https://opensearch.org/",
    }
)


async def _opensearch(port: int) -> None:
    from aiohttp import web

    counters = Counters()

    async def bulk(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp has already inflated a gzip body (Content-Encoding)
        counters.add(body.count(b"\n") // 2)
        return web.Response(body=b'{"took":1,"errors":false,"items":[]}', content_type="application/json")

    async def other(request: web.Request) -> web.Response:
        if request.path in ("/", ""):
            return web.Response(body=_ROOT, content_type="application/json")
        if request.method == "HEAD":
            return web.Response(status=200)
        if request.method == "GET":
            return web.Response(status=404, body=b'{"error":"not found","status":404}')
        await request.read()
        return web.Response(body=b'{"acknowledged":true}', content_type="application/json")

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("POST", "/_bulk", bulk)
    app.router.add_route("PUT", "/_bulk", bulk)
    app.router.add_route("POST", "/{index}/_bulk", bulk)
    app.router.add_route("*", "/{tail:.*}", other)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await _report(counters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sinks")
    parser.add_argument("kind", choices=["lumberjack", "opensearch"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path)
    args = parser.parse_args(argv)
    import uvloop

    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        if args.kind == "lumberjack":
            uvloop.run(_lumberjack(args.port, args.record))
        else:
            uvloop.run(_opensearch(args.port))
    return 0


@dataclass
class Sink:
    """A running sink process and its latest counters."""

    proc: Measured
    port: int
    events: int = 0
    first: float = 0.0
    last: float = 0.0
    _reader: threading.Thread | None = field(default=None, repr=False)

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            with contextlib.suppress(orjson.JSONDecodeError):
                d: Any = orjson.loads(line)
                if isinstance(d, list):  # benchmarks.shipper_blackhole: [events, first, last]
                    self.events, self.first, self.last = d
                elif isinstance(d, dict):
                    self.events, self.first, self.last = d["events"], d["first"], d["last"]

    def wait_events(self, n: int, timeout: float, progress: Any = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.events >= n:
                return True
            if not self.proc.alive():
                raise RuntimeError(f"sink exited: {self.proc.log_tail()}")
            if progress is not None:
                progress(self.events)
            time.sleep(0.05)
        return self.events >= n

    def stop(self) -> None:
        self.proc.stop(5)


def start_sink(kind: str, port: int, workdir: Path, record: Path | None = None) -> Sink:
    """kind: `lumberjack` (logship's own server, decodes every event; can record them),
    `opensearch` (answers `_bulk`), or `frames` (benchmarks.shipper_blackhole's frame counter: acks
    without decoding JSON, the cheapest receiver, so the shipper is what gets measured)."""
    if kind == "frames":
        argv = [PYTHON, "-m", "benchmarks.shipper_blackhole", "--sink", str(port)]
    else:
        argv = [PYTHON, "-m", "benchmarks.sinks", kind, "--port", str(port)]
    if record is not None:
        argv += ["--record", str(record)]
    name = f"sink-{kind}-{port}"
    proc = spawn(name, argv, workdir, stdout_pipe=True)
    sink = Sink(proc, port)
    assert proc.popen.stdout is not None
    sink._reader = threading.Thread(target=sink._read, args=(proc.popen.stdout,), daemon=True)
    sink._reader.start()
    wait_port(port, 30, proc.popen)
    return sink


if __name__ == "__main__":
    raise SystemExit(main())
