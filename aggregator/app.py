"""`logship aggregator` and `logship test output` for the aggregator.

Start order: metrics/health endpoint first (so a pod that waits for OpenSearch is visibly alive but
not ready), then the index template (retried until OpenSearch answers), then the lumberjack listener.
SIGTERM/SIGINT: stop accepting, send what is queued, let the open windows be acked, exit 0 — all within
`shutdown_timeout`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time

import uvloop
from opensearchpy import AsyncOpenSearch, TransportError
from opensearchpy import ConnectionError as OSConnectionError

from aggregator.auth import Redactor, build_client
from aggregator.config import AggregatorConfig
from aggregator.metrics import Metrics
from aggregator.pipeline import Pipeline
from aggregator.routing import Router
from aggregator.sink import BlackholeSink, OpenSearchSink, Sink, close_client, describe
from aggregator.splice import decode_window
from aggregator.template import index_patterns, install_ism_policy, install_template, template_installed
from logship.backoff import Backoff
from logship.config import ConfigError
from logship.lumberjack.server import LumberjackServer, ServerLimits
from logship.ops import OpsServer
from logship.tls import server_context

log = logging.getLogger("aggregator")


def _patterns(cfg: AggregatorConfig) -> list[str]:
    router = Router([r.spec() for r in cfg.routes], cfg.default_index, cfg.family_index)
    return index_patterns(router.patterns)


async def _setup_indices(client: AsyncOpenSearch, cfg: AggregatorConfig, redact: Redactor) -> None:
    """Install the template (and ISM policy), retrying until OpenSearch answers."""
    backoff = Backoff(cfg.bulk.backoff.initial, cfg.bulk.backoff.max)
    patterns = _patterns(cfg)
    while True:
        try:
            if cfg.template.install:
                await install_template(client, cfg.template.name, patterns, cfg.template.shards, cfg.template.replicas)
            if cfg.ism_delete_after is not None:
                await install_ism_policy(client, f"{cfg.template.name}-retention", patterns, cfg.ism_delete_after)
            return
        except (OSConnectionError, TransportError) as exc:
            delay = backoff.next()
            if isinstance(exc, TransportError) and exc.status_code in (401, 403):
                log.error(
                    "OpenSearch refused our credentials for the index template (%s): check "
                    "aggregator.opensearch.username/password (or username_file/password_file, aws_sigv4); "
                    "retrying in %.1fs",
                    redact(exc),
                    delay,
                )
            else:
                log.warning("OpenSearch not ready for the index template (%s); retrying in %.1fs", redact(exc), delay)
            await asyncio.sleep(delay)


def tune_gc() -> None:
    """Fewer cyclic-GC passes. Events are acyclic dicts freed by reference counting, yet with the
    default threshold every 700 allocations trigger a scan over tens of thousands of live events:
    that doubled the cost of decoding an event. Objects from start-up are frozen out of the scans."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


class Aggregator:
    """The running server; `sink` replaces OpenSearch (e.g. BlackholeSink for benchmarks)."""

    def __init__(self, cfg: AggregatorConfig, *, sink: Sink | None = None, blackhole: bool = False) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.client: AsyncOpenSearch | None = None
        self.redact = Redactor([])
        if sink is None and blackhole:
            sink = BlackholeSink()
        if sink is None:
            os_cfg = cfg.opensearch
            self.client, self.redact = build_client(os_cfg, pool_size=2)  # template, readiness

            def connect(url: str) -> AsyncOpenSearch:
                return build_client(os_cfg, pool_size=cfg.bulk.concurrency + 2, hosts=[url])[0]

            sink = OpenSearchSink(
                connect,
                os_cfg.hosts,
                self.redact,
                gzip_bodies=cfg.bulk.gzip,
                sniff_interval=os_cfg.sniff_interval if os_cfg.sniff else None,
                probe_timeout=min(5.0, os_cfg.timeout),
                request_timeout=os_cfg.timeout,
                metrics=self.metrics,
            )
        self.sink = sink
        self.pipeline = Pipeline(cfg, sink, self.metrics)
        listen = cfg.listen
        self.server = LumberjackServer(
            self.pipeline.handle,
            host=listen.host,
            port=listen.port,
            ssl=server_context(listen.tls, "aggregator.listen.tls"),
            limits=ServerLimits(
                max_frame_bytes=listen.max_frame_bytes,
                max_window_size=listen.max_window_size,
                max_decompressed_bytes=listen.max_decompressed_bytes,
                idle_timeout=listen.idle_timeout,
                keepalive_interval=listen.keepalive_interval,
                max_windows_in_flight=listen.max_windows_in_flight,
                max_window_bytes=listen.max_window_bytes,
                max_connections=listen.max_connections,
            ),
            registry=self.metrics.registry,
            decode=decode_window,
        )
        self.ops = OpsServer(self.metrics.registry, host=cfg.http.host, port=cfg.http.port, ready=self.ready)
        self._ready_cache: tuple[float, bool, str] = (0.0, False, "starting")
        self.accepting = False  # the lumberjack listener is up

    async def ready(self) -> tuple[bool, str]:
        """Ready when OpenSearch answers (cached for 2 s so probes do not hammer it)."""
        if not self.accepting:
            return False, "starting: waiting for OpenSearch to install the index template"
        if self.client is None:
            return True, "ok (no OpenSearch: blackhole sink)"
        now = time.monotonic()
        if now - self._ready_cache[0] < 2.0:
            return self._ready_cache[1], self._ready_cache[2]
        try:
            info = await self.client.info(request_timeout=5)
            result = (True, f"ok: OpenSearch {info['version']['number']} answers")
        except Exception as exc:
            result = (False, self.redact(f"OpenSearch does not answer: {type(exc).__name__}"))
        self._ready_cache = (now, *result)
        return result

    async def start(self, *, setup_indices: bool = True) -> None:
        tune_gc()
        await self.ops.start()
        if setup_indices and self.client is not None:
            await _setup_indices(self.client, self.cfg, self.redact)
        self.pipeline.start()
        if isinstance(self.sink, OpenSearchSink):
            self.sink.start()
        await self.server.start()
        self.accepting = True

    async def shutdown(self) -> bool:
        """Stop accepting, flush, ack, close; True if every received event was settled in time."""
        deadline = time.monotonic() + self.cfg.shutdown_timeout
        log.info("shutting down: no new connections; flushing %d queued events", self.pipeline.outstanding)
        self.accepting = False
        await self.server.stop_accepting()
        self.pipeline.sender.drain()
        await self.server.close(max(0.1, deadline - time.monotonic()))
        flushed = await self.pipeline.close(max(0.1, deadline - time.monotonic()))
        await self.sink.close()
        if self.client is not None:
            await close_client(self.client)
        await self.ops.close()
        return flushed


async def _main(cfg: AggregatorConfig) -> int:
    agg = Aggregator(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(agg.start())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        starting.result()  # a bind error and the like end the process with its message
        log.info("aggregator ready: lumberjack on port %d, metrics on %d", agg.server.port, agg.ops.port)
        await stopper
    else:
        starting.cancel()
    flushed = await agg.shutdown()
    log.info("aggregator stopped%s", "" if flushed else " (some windows left unacknowledged)")
    return 0


def run(cfg: AggregatorConfig) -> int:
    # opensearch-py logs every failed request with a traceback; the sender logs one line per retry.
    logging.getLogger("opensearch").setLevel(logging.ERROR)
    try:
        return uvloop.run(_main(cfg))
    except OSError as exc:
        print(
            f"aggregator: cannot listen ({exc.strerror or exc}); check aggregator.listen and aggregator.http",
            file=sys.stderr,
        )
        return 1


async def _test_output(cfg: AggregatorConfig) -> int:
    try:
        client, redact = build_client(cfg.opensearch)
    except ConfigError:
        raise
    try:
        for host in cfg.opensearch.hosts:
            print(f"opensearch: {host}")
        try:
            info = await client.info(request_timeout=min(cfg.opensearch.timeout, 15.0))
        except OSConnectionError as exc:
            print(redact(f"  connection... ERROR: cannot reach OpenSearch: {describe(exc)}"), file=sys.stderr)
            print("  check aggregator.opensearch.hosts, the network and TLS settings", file=sys.stderr)
            return 1
        except TransportError as exc:
            print(redact(f"  connection... ERROR: OpenSearch answered {exc.status_code}: {exc.error}"), file=sys.stderr)
            if exc.status_code in (401, 403):
                print("  check aggregator.opensearch.username/password (or *_file, aws_sigv4)", file=sys.stderr)
            return 1
        version = info.get("version", {})
        print(f"  connection... OK: {version.get('distribution', 'elasticsearch')} {version.get('number')}")
        name = cfg.template.name
        try:
            installed = await template_installed(client, name)
        except TransportError as exc:
            print(redact(f"  index template {name}... ERROR: {exc.status_code}: {exc.error}"), file=sys.stderr)
            return 1
        patterns = ", ".join(_patterns(cfg))
        if installed:
            print(f"  index template {name} ({patterns})... installed")
        else:
            print(f"  index template {name} ({patterns})... not installed (the aggregator installs it at start)")
        return 0
    finally:
        await client.close()


def test_output(cfg: AggregatorConfig) -> int:
    return uvloop.run(_test_output(cfg))
