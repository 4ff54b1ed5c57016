"""The shipper process: find files, read them, send windows, checkpoint acknowledged offsets.

Three tasks, so that a blocked output never stops the shipper from finding and holding files:

- discovery (`_discover_loop`): rescans the globs every `scan_interval` and whenever inotify reports a
  file created, renamed or deleted; registers new files and holds their handles, detaches rotated ones,
  finishes truncated and recovered generations. It never waits for the output.
- the reader (`_read_loop`): reads files with new data in chunks and puts sealed windows into the
  sender's bounded queue; it waits there when the output is blocked, which bounds memory.
- the sender (`pipeline.Sender`): owns the connection, windows in flight and acks.

Housekeeping writes the registry every `flush_interval` in a thread (it fsyncs). SIGTERM: stop
reading, send what was read, wait for acks up to `shutdown_timeout`, write the registry, exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvloop

from logship.lumberjack.client import LumberjackClient, parse_host
from logship.lumberjack.endpoints import Endpoint, Lookup, getaddrinfo_lookup, is_address
from logship.ops import OpsServer
from logship.tls import client_context
from shipper.config import ShipperConfig
from shipper.event import load_agent
from shipper.harvester import Batch, Harvester
from shipper.heap import trim
from shipper.kubernetes.provider import MetadataProvider
from shipper.lock import registry_lock
from shipper.metrics import ShipperMetrics
from shipper.pipeline import Sender, SendFn, WindowAssembler
from shipper.registry import CorruptRegistry, RegistryFile
from shipper.tailer import Tailer
from shipper.watch import POLL_TICK, make_watcher

log = logging.getLogger("logship.shipper")

UNREACHABLE_NOT_READY = 60.0  # /readyz fails once no aggregator answered for this long
STATS_INTERVAL = 30.0


class Shipper:
    def __init__(self, cfg: ShipperConfig, send: SendFn | None = None) -> None:
        self.cfg = cfg
        self.metrics = ShipperMetrics()
        self.registry_file = RegistryFile(cfg.registry.path)
        self.agent = load_agent(Path(cfg.registry.path).parent, cfg.host_name)  # agent.id, kept beside the registry
        try:
            self.checkpoints = self.registry_file.load()
        except CorruptRegistry as exc:
            log.error("%s; starting without checkpoints", exc)
            self.checkpoints = self.registry_file.load()
        self.client: LumberjackClient | None = None
        if send is None:
            tls = cfg.output.tls
            self.client = LumberjackClient(
                cfg.output.hosts,
                ssl=client_context(tls, "shipper.output.tls"),
                server_hostname=tls.server_name,
                compression_level=cfg.output.compression_level,
                timeout=cfg.output.timeout,
                connect_timeout=cfg.output.connect_timeout,
                backoff_initial=cfg.output.backoff.initial,
                backoff_max=cfg.output.backoff.max,
                loadbalance=cfg.output.loadbalance,
                max_pending_windows=cfg.output.max_pending_windows,
                workers=cfg.output.workers,
                ttl=cfg.output.ttl,
            )
            send = self.client.send
        self.assembler = WindowAssembler(
            cfg.output.window_size,
            self.checkpoints,
            cfg.output.window_max_bytes,
            writer=self.client.new_window if self.client is not None else None,
        )
        self.tailer = Tailer(
            cfg, self.checkpoints, on_lost=self._lost, on_retire=self.assembler.rekey, on_skip=self.assembler.skip
        )
        self.sender = Sender(
            send,
            self.checkpoints,
            cfg.output.max_pending_windows,
            cfg.output.queue_windows,
            on_acked=self._count_acked,
            on_sent=self.metrics.events_sent.inc,
        )
        self.metrics.watch_files(self._behind)
        self.kubernetes: MetadataProvider | None = None
        if cfg.kubernetes.enabled and not cfg.sidecar:
            node = cfg.kubernetes.node_name or cfg.host_name
            self.kubernetes = MetadataProvider(
                cfg.kubernetes, node, registry=self.metrics.registry, on_change=self._on_rescan
            )
            self.tailer.metadata = self.kubernetes
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._rescan = asyncio.Event()
        self._created: list[str] = []
        self._dirty: set[str] = set()
        self._registry_ok = True
        self._registry_error = ""
        self._registry_write: asyncio.Future[None] | None = None  # the latest write, maybe still in its thread
        self._last_connected = time.monotonic()
        self.ops: OpsServer | None = None
        self._acked_total = 0

    # -- probes and metrics --------------------------------------------------------------------

    def _count_acked(self, n: int) -> None:
        self._acked_total += n
        self.metrics.events_acked.inc(n)

    def _lost(self, reason: str, path: str, first: int, end: int) -> None:
        self.metrics.lost(reason, end - first)
        what = f"bytes {first}-{end}" if end > first else "its bytes (size unknown)"
        log.error("%s: %s could not be read (%s); counted in logship_shipper_bytes_lost_total", path, what, reason)

    def _behind(self) -> Iterator[tuple[str, int]]:
        for h in list(self.tailer.harvesters.values()):
            yield h.path, h.behind()

    async def ready(self) -> tuple[bool, str]:
        if not self._registry_ok:
            return False, f"registry {self.cfg.registry.path} cannot be written: {self._registry_error}"
        if self.client is not None and not self.client.connected:
            down = time.monotonic() - self._last_connected
            if down > UNREACHABLE_NOT_READY:
                return False, f"no aggregator of {', '.join(self.cfg.output.hosts)} reachable for {down:.0f}s"
        return True, "ok"

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("stopping: no more reading; sending what was read and waiting for acks")
        self._stopping.set()
        self._wake.set()

    async def run(self, ops_port: int | None = None) -> int:
        self.ops = OpsServer(
            self.metrics.registry,
            host=self.cfg.http.host,
            port=self.cfg.http.port if ops_port is None else ops_port,
            ready=self.ready,
        )
        await self.ops.start()
        if self.kubernetes is not None:
            await self.kubernetes.start()
        self.watcher = make_watcher(self.cfg.watch, self._on_change, self._on_rescan)
        log.info(
            "shipper started: %d input(s), watching with %s, output %s",
            len(self.cfg.inputs),
            self.watcher.mode,
            ", ".join(self.cfg.output.hosts),
        )
        self._scan()  # every file is registered and held before anything is read
        self.sender.start()
        housekeeping = asyncio.create_task(self._housekeeping())
        discovery = asyncio.create_task(self._discover_loop())
        reader = asyncio.create_task(self._read_loop())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({reader, discovery, stopping}, return_when=asyncio.FIRST_COMPLETED)
            discovery.cancel()
            if not reader.done():
                # The reader may be waiting for room in a full queue (no aggregator): it is cancelled.
                # Windows it built but could not queue stay open in the checkpoints, so no checkpoint
                # moves past them; their events are read again at the next start.
                await asyncio.wait({reader}, timeout=1.0)
                reader.cancel()
            await asyncio.gather(reader, discovery, return_exceptions=True)
            for task in (reader, discovery):
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if self.cfg.sidecar and not reader.cancelled():
                await self._drain_sidecar()
        finally:
            stopping.cancel()
            await self._shutdown(housekeeping)
        return 0

    async def _drain_sidecar(self) -> None:
        """A sidecar stops after its app has exited (native sidecar order), and its files and registry
        end with the pod: read what the app wrote last and flush pending multi-line events now, as
        there is no next start to resume them."""
        chunk = self.cfg.read_buffer_bytes

        async def drain() -> None:
            for h in list(self.tailer.harvesters.values()):
                await self._emit(h, h.read(chunk, time.monotonic()))
                while not h.at_eof:
                    await self._emit(h, h.read(chunk, time.monotonic()))
                await self._emit(h, h.finish())

        try:
            await asyncio.wait_for(drain(), timeout=self.cfg.shutdown_timeout / 2)
        except (TimeoutError, OSError) as exc:
            log.warning("sidecar: could not read the app's files to the end at shutdown: %s", exc or "timeout")

    async def _shutdown(self, housekeeping: asyncio.Task[None]) -> None:
        w = self.assembler.take()
        if w is not None:
            await self.sender.put(w, force=True)
        if not await self.sender.drain(self.cfg.shutdown_timeout):
            log.warning(
                "%d window(s) not acknowledged within shutdown_timeout; they are resent at the next start",
                self.sender.in_flight + self.sender.queued,
            )
        await self.sender.close()
        # Housekeeping kept saving the registry while the acks came in; its last write may still be in
        # its thread. It lands before the final one, and both before "registry written" and the exit.
        housekeeping.cancel()
        await asyncio.gather(housekeeping, return_exceptions=True)
        await self._save_registry()
        if self.client is not None:
            await self.client.close()
        self.watcher.close()
        self.tailer.close()
        if self.kubernetes is not None:
            await self.kubernetes.close()
        if self.ops is not None:
            await self.ops.close()
        log.info("shipper stopped; registry written to %s", self.cfg.registry.path)

    # -- discovery ----------------------------------------------------------------------------

    def _on_change(self, realpath: str) -> None:
        key = self.tailer.by_realpath.get(realpath)
        if key is not None:
            self._dirty.add(key)
            self._wake.set()

    def _on_rescan(self, created: Sequence[str] = ()) -> None:
        self._created.extend(created)
        self._rescan.set()

    def _scan(self) -> None:
        created, self._created = self._created, []
        self.tailer.scan(time.monotonic(), time.time(), created)
        self.watcher.update(self.tailer.watch_dirs)
        self._dirty.update(self.tailer.harvesters)
        self._wake.set()
        m = self.metrics
        m.open_files.set(len(self.tailer.harvesters))
        m.files_waiting.set(len(self.tailer.waiting))
        m.deleted_bytes_held.set(self.tailer.deleted_bytes_held)

    async def _discover_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._rescan.wait(), self.cfg.scan_interval)
            except TimeoutError:
                pass
            self._rescan.clear()
            self._scan()

    # -- reading ------------------------------------------------------------------------------

    async def _emit(self, h: Harvester, batch: Batch) -> None:
        if batch.lines:
            self.metrics.lines_read.inc(batch.lines)
        if batch.nbytes:
            self.metrics.bytes_read.inc(batch.nbytes)
        if batch.events:
            # the key is read once: discovery may retire this generation under a new key meanwhile
            for window in self.assembler.add(
                h.key, h.path, h.identity.fingerprint, batch.events, batch.resumes, h.real
            ):
                await self.sender.put(window)

    async def _read_loop(self) -> None:
        chunk = self.cfg.read_buffer_bytes
        harvesters = self.tailer.harvesters
        next_poll = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_poll:
                # poll mode checks every file; inotify mode only rotated ones (their new name is unwatched)
                if self.watcher.tick is not None:
                    self._dirty.update(harvesters)
                else:
                    self._dirty.update(k for k, h in harvesters.items() if h.detached)
                next_poll = now + POLL_TICK
            progressed = False
            dirty, self._dirty = self._dirty, set()
            for key in dirty:
                hv = harvesters.get(key)
                if hv is None:
                    continue
                try:
                    batch = hv.read(chunk, now)
                except OSError as exc:
                    log.warning("%s: read failed: %s", hv.path, exc)
                    continue
                await self._emit(hv, batch)
                if not hv.at_eof:
                    self._dirty.add(hv.key)
                    progressed = True
                if self._stopping.is_set():
                    return
            deadline = None
            for h in list(harvesters.values()):
                d = h.deadline
                if d is not None:
                    if d <= now:
                        await self._emit(h, h.flush_due(now))
                    elif deadline is None or d < deadline:
                        deadline = d
            done = self.tailer.reap(now)
            for h, finished in done:
                if finished:
                    await self._emit(h, h.finish())
                self.tailer.release(h)
            if done:
                self.metrics.open_files.set(len(harvesters))
            if progressed:
                await asyncio.sleep(0)
                continue
            w = self.assembler.take()
            if w is not None:
                await self.sender.put(w)
            wait_until = min(next_poll, deadline if deadline is not None else next_poll)
            timeout = wait_until - time.monotonic()
            if timeout > 0 and not self._dirty:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass

    # -- registry -----------------------------------------------------------------------------

    async def _save_registry(self) -> None:
        earlier, self._registry_write = self._registry_write, None
        if earlier is not None:
            # a write whose task was cancelled (housekeeping, at shutdown) may still run in its thread:
            # it lands before this one, never after; had it failed (its task may not have seen it), write again
            await asyncio.wait({earlier})
            if not earlier.cancelled() and earlier.exception() is not None:
                self.checkpoints.changed = True
        if not self.checkpoints.changed:
            return
        data = self.checkpoints.snapshot()
        try:
            # fsyncs take milliseconds to seconds on a busy disk: never on the event loop; shielded, so a
            # cancelled task leaves the write it began for the next save to wait for
            self._registry_write = asyncio.ensure_future(asyncio.to_thread(self.registry_file.write, data))
            await asyncio.shield(self._registry_write)
        except OSError as exc:
            # keep the state in memory and retry: ENOSPC and EIO are often transient
            self.checkpoints.changed = True
            self.metrics.registry_errors.inc()
            if self._registry_ok:
                log.error("cannot write registry %s: %s; retrying", self.cfg.registry.path, exc)
            self._registry_ok = False
            self._registry_error = str(exc)
        else:
            if not self._registry_ok:
                log.info("registry %s written again", self.cfg.registry.path)
            self._registry_ok = True

    async def _housekeeping(self) -> None:
        last_clean = last_stats = time.monotonic()
        acked = connects = 0
        while True:
            await asyncio.sleep(self.cfg.registry.flush_interval)
            await self._save_registry()
            trim()  # what a burst of reading freed goes back to the kernel instead of staying resident
            now = time.monotonic()
            self.metrics.windows_pending.set(self.checkpoints.pending_windows)
            self.metrics.windows_queued.set(self.sender.queued)
            if self.client is not None:
                if self.client.connected:
                    self._last_connected = now
                self.metrics.output_connected.set(1 if self.client.connected else 0)
                self.metrics.output_connections.set(self.client.connections)
                self.metrics.output_connects.inc(self.client.connects - connects)
                connects = self.client.connects
            # at least once a minute, and often enough that a short clean_after is honoured
            if now - last_clean > min(60.0, self.cfg.registry.clean_after):
                last_clean = now
                gone = self.checkpoints.clean(time.time(), self.cfg.registry.clean_after)
                if gone:
                    log.info(
                        "registry: dropped %d entries of files gone for %ss", len(gone), self.cfg.registry.clean_after
                    )
            if now - last_stats >= STATS_INTERVAL:
                total = self._acked_total
                log.info(
                    "%d files open, %d events acknowledged in the last %.0fs, %d windows awaiting ack",
                    len(self.tailer.harvesters),
                    total - acked,
                    now - last_stats,
                    self.checkpoints.pending_windows,
                )
                acked, last_stats = total, now


def _raise_fd_limit() -> None:
    """Tailing a thousand files needs more descriptors than the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _main(cfg: ShipperConfig) -> int:
    _raise_fd_limit()
    # Every line makes a few short-lived tuples and dicts that refcounting frees; cycles are rare.
    # Freezing what start-up created and collecting less often saves ~8% CPU on the hot path.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    shipper = Shipper(cfg)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shipper.stop)
    return await shipper.run()


def run(cfg: ShipperConfig) -> int:
    with registry_lock(cfg.registry.path):
        return uvloop.run(_main(cfg))


async def _probe(endpoint: Endpoint, cfg: ShipperConfig) -> str | None:
    tls = cfg.output.tls
    ctx = client_context(tls, "shipper.output.tls")
    server_hostname = (tls.server_name or endpoint.host) if ctx else None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.address, endpoint.port, ssl=ctx, server_hostname=server_hostname),
            timeout=10.0,
        )
    except (OSError, TimeoutError) as exc:
        return str(exc) or type(exc).__name__
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


async def _test_output(cfg: ShipperConfig, hosts: Sequence[str], lookup: Lookup = getaddrinfo_lookup) -> int:
    """One line per host; a name with several addresses (a headless Service) gets a line per address.
    With loadbalance every address is used, so every one must answer; without, one is enough."""
    status = 0
    tls = " (TLS)" if cfg.output.tls.enabled else ""
    for host in hosts:
        name, port = parse_host(host)
        try:
            addresses = [name] if is_address(name) else await lookup(name, port)
        except OSError as exc:
            status = 1
            print(f"shipper.output.hosts: {host}{tls}: FAILED: cannot resolve {name}: {exc}")
            continue
        endpoints = [Endpoint(name, address, port) for address in addresses]
        errors = [await _probe(e, cfg) for e in endpoints]
        failed = [e for e in errors if e is not None]
        ok = not failed if cfg.output.loadbalance else len(failed) < len(errors)
        if ok:
            print(f"shipper.output.hosts: {host}{tls}: connection OK")
        else:
            status = 1
            print(f"shipper.output.hosts: {host}{tls}: FAILED: {failed[0]}")
        if len(endpoints) > 1:
            for endpoint, error in zip(endpoints, errors, strict=True):
                print(f"  {endpoint.address}: {'OK' if error is None else 'FAILED: ' + error}")
    return status


def test_output(cfg: ShipperConfig) -> int:
    """Connect to each configured aggregator (and handshake TLS) and report; exit 1 if any fails."""
    return uvloop.run(_test_output(cfg, cfg.output.hosts))
