"""Lumberjack v2 client (the writer side, like Filebeat's logstash output).

`send()` queues one window and returns once the reader acked all of it. One worker per connection
target takes queued windows, writes them in order and matches acks in order; when a connection fails
or goes silent for `timeout` (keepalive acks count as signs of life), its unacked windows go back to
the front of the queue and are resent on the next connection, after a backoff with full jitter.

Each host name stands for every address it resolves to (`endpoints.py`; a headless Service gives one
per replica), looked up again whenever a connection ends. Without loadbalance there is one worker that
starts at a random endpoint and moves to the next one at every reconnect; with it, one worker per
endpoint (workers come and go with the answers), and whichever is connected and free takes the next
window. `workers` multiplies that (Filebeat's `worker`): that many connections per endpoint with
loadbalance, that many rotating connections without it. With a `ttl` every connection is closed and
opened again once the TTL is over and its windows in flight are acked, which is how long-lived
connections find new replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl as ssl_module
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from logship.backoff import Backoff
from logship.lumberjack.codec import ProtocolError, WindowWriter
from logship.lumberjack.endpoints import Endpoint, Lookup, Resolver, Rotation, expand, getaddrinfo_lookup
from logship.lumberjack.session import WriterSession

log = logging.getLogger("logship.lumberjack.client")

DEFAULT_PORT = 5044
# Connections ending together (a TTL, a dead replica) share one lookup of the names.
RESOLVE_MIN_INTERVAL = 1.0


class ClientClosed(Exception):
    """The client was closed before the window was acknowledged."""


def parse_host(host: str) -> tuple[str, int]:
    """`"host"`, `"host:5044"`, `"[::1]:5044"` -> (host, port); the one parser for config and client."""
    text = host.strip()
    if text.startswith("["):
        addr, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid host {host!r}; expected [ipv6] or [ipv6]:port")
        sep, port = rest[:1], rest[1:]
    elif text.count(":") == 1:
        addr, sep, port = text.partition(":")
    elif ":" in text:  # `fe80::1:6000` could be an address or an address and a port: refuse to guess
        raise ValueError(f"IPv6 address in {host!r} must be in brackets, for example [fe80::1]:5044")
    else:
        addr, sep, port = text, "", ""
    if not addr:
        raise ValueError(f"invalid host {host!r}; expected host or host:port")
    if not sep:
        return addr, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid port in host {host!r}; expected 1-65535")
    return addr, int(port)


class EncodedWindow(NamedTuple):
    """A window as it goes on the wire (compressed if the client compresses), built ahead of `send`: its
    bytes are the chunks in order (`WindowWriter.finish`)."""

    chunks: Sequence[bytes]
    size: int  # events


@dataclass(eq=False)
class _Window:
    chunks: Sequence[bytes]
    count: int
    done: asyncio.Future[None]
    attempts: int = field(default=0)


@dataclass(eq=False)
class _Worker:
    """One connection slot: a fixed endpoint (load balancing) or the rotation's choice (failover)."""

    endpoint: Endpoint | None
    slot: int  # which of the `workers` connections to this endpoint (or of the rotating ones)
    session: WriterSession[_Window]
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    retired: bool = False  # its endpoint is no longer resolved: finish what is in flight, then stop
    connected: bool = False


class LumberjackClient:
    def __init__(
        self,
        hosts: Sequence[str],
        *,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        compression_level: int = 3,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        loadbalance: bool = False,
        max_pending_windows: int = 1,
        workers: int = 1,
        ttl: float = 0.0,
        lookup: Lookup = getaddrinfo_lookup,
        rng: random.Random | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("at least one host is required")
        if not 0 <= compression_level <= 9:
            raise ValueError("compression_level must be between 0 (off) and 9")
        if ttl < 0:
            raise ValueError("ttl must be 0 (off) or positive")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.hosts = [parse_host(h) for h in hosts]
        self._ssl = ssl
        self._server_hostname = server_hostname
        self.compression_level = compression_level
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        Backoff(backoff_initial, backoff_max)  # bad values fail here, not later in a silent worker
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self.loadbalance = loadbalance
        self.ttl = ttl
        self.workers = workers
        self.max_pending_windows = max(1, max_pending_windows)
        self._slots = asyncio.Semaphore(self.max_pending_windows)
        self._resolver = Resolver(self.hosts, lookup)
        self._rotation = Rotation(rng)  # rng: where the single connection starts (random)
        self._resolving: asyncio.Future[list[Endpoint]] | None = None
        self._resolved_at = 0.0
        self._queue: deque[_Window] = deque()
        self._workers: list[_Worker] = []
        self._started = False
        self._wake_turn = 0
        self._closed = False
        self.connects = 0  # connections opened (a TTL shows as one more per TTL)

    @property
    def connected(self) -> bool:
        return any(w.connected for w in self._workers)

    @property
    def connections(self) -> int:
        return sum(1 for w in self._workers if w.connected)

    @property
    def endpoints(self) -> list[Endpoint]:
        """The endpoints with a worker now (load balancing), for logs and tests."""
        return [w.endpoint for w in self._workers if w.endpoint is not None and not w.retired]

    def encode(self, events: Sequence[bytes]) -> EncodedWindow:
        """`events` as this client writes them (`send` of a list); a caller filling a window batch by batch
        uses `new_window` instead."""
        writer = self.new_window()
        writer.add(events)
        return EncodedWindow(writer.finish(), len(events))

    def new_window(self) -> WindowWriter:
        """An empty window to fill batch by batch; `EncodedWindow(writer.finish(), writer.count)` is sent as is."""
        return WindowWriter(self.compression_level)

    async def send(self, events: Sequence[bytes] | EncodedWindow) -> None:
        """Send one window (each item one JSON-encoded event, or `encode`'s result); return once it is acked.

        Retries forever across reconnects; raises ClientClosed if close() is called first.
        """
        if self._closed:
            raise ClientClosed("client is closed")
        if (events.size if isinstance(events, EncodedWindow) else len(events)) == 0:
            return
        async with self._slots:
            if self._closed:
                raise ClientClosed("client is closed")
            loop = asyncio.get_running_loop()
            wire = events if isinstance(events, EncodedWindow) else self.encode(events)
            window = _Window(wire.chunks, wire.size, loop.create_future())
            self._start()
            self._queue.append(window)
            self._wake()
            try:
                await asyncio.shield(window.done)
            except asyncio.CancelledError:
                # The caller gave up: drop the window if it was not written yet.
                with contextlib.suppress(ValueError):
                    self._queue.remove(window)
                raise

    async def close(self) -> None:
        """Stop all connections; pending send() calls raise ClientClosed."""
        self._closed = True
        if self._resolving is not None:
            self._resolving.cancel()
        tasks = [w.task for w in self._workers if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = list(self._queue)
        for worker in self._workers:
            pending.extend(worker.session.take_unacked())
        self._workers.clear()
        self._queue.clear()
        for window in pending:
            if not window.done.done():
                window.done.set_exception(ClientClosed("client closed before the window was acknowledged"))
                window.done.exception()  # mark retrieved: the sender may have given up already

    # -- workers ---------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.loadbalance:
            # the first lookup creates one worker per endpoint
            self._spawn_lookup()
        else:
            for slot in range(self.workers):
                self._add_worker(None, slot)

    def _add_worker(self, endpoint: Endpoint | None, slot: int) -> None:
        worker = _Worker(endpoint, slot, WriterSession(self.timeout, 1))
        name = f"lumberjack-client-{endpoint or 'failover'}-{slot}"
        worker.task = asyncio.create_task(self._worker(worker), name=name)
        self._workers.append(worker)
        worker.task.add_done_callback(functools.partial(self._forget, worker))

    def _forget(self, worker: _Worker, _task: asyncio.Task[None]) -> None:
        if worker.retired and worker in self._workers:
            self._workers.remove(worker)

    def _wake(self) -> None:
        # The first worker woken takes the window: start with a different one each time.
        workers = self._workers
        if workers:
            self._wake_turn = (self._wake_turn + 1) % len(workers)
            for worker in workers[self._wake_turn :] + workers[: self._wake_turn]:
                worker.wakeup.set()

    def _least_loaded(self, session: WriterSession[_Window]) -> bool:
        """Whether no other open connection has fewer windows in flight (so the load spreads even
        when fewer windows are outstanding than the connections could take)."""
        mine = len(session.in_flight)
        return all(
            mine <= len(w.session.in_flight)
            for w in self._workers
            if w.connected and w.session is not session and w.session.has_room
        )

    def _spawn_lookup(self) -> asyncio.Future[list[Endpoint]]:
        loop = asyncio.get_running_loop()
        fresh = self._resolving is not None and loop.time() - self._resolved_at < RESOLVE_MIN_INTERVAL
        if self._resolving is None or not (fresh or not self._resolving.done()):
            self._resolved_at = loop.time()
            self._resolving = asyncio.ensure_future(self._resolve())
        return self._resolving

    async def _resolve(self) -> list[Endpoint]:
        try:
            endpoints = await self._resolver.endpoints()
        except Exception:
            # never leave the workers without an answer: the configured hosts as they are
            log.exception("looking up %s failed", ", ".join(f"{h}:{p}" for h, p in self.hosts))
            endpoints = expand(self.hosts, {})
        if self.loadbalance and not self._closed:
            self._sync_workers(endpoints)
        return endpoints

    def _sync_workers(self, endpoints: list[Endpoint]) -> None:
        """`workers` workers per endpoint: start the new ones, retire those no longer resolved."""
        current = {(w.endpoint, w.slot): w for w in self._workers if not w.retired}
        for endpoint in endpoints:
            if (endpoint, 0) not in current:
                log.info("load balancing: adding %s", endpoint)
            for slot in range(self.workers):
                if (endpoint, slot) not in current:
                    self._add_worker(endpoint, slot)
        for (gone, slot), worker in current.items():
            if gone not in endpoints:
                if slot == 0:
                    log.info("load balancing: %s no longer resolved; closing it once its windows are acked", gone)
                worker.retired = True
                worker.session.retire()
                worker.wakeup.set()

    def _share(self) -> int:
        """Windows one connection may have in flight: the total, split over the connections."""
        workers = sum(1 for w in self._workers if not w.retired) or 1
        return -(-self.max_pending_windows // workers)

    async def _next_endpoint(self, worker: _Worker) -> Endpoint | None:
        endpoints = await asyncio.shield(self._spawn_lookup())
        if worker.endpoint is not None:
            return None if worker.retired else worker.endpoint
        return self._rotation.pick(endpoints)

    async def _worker(self, worker: _Worker) -> None:
        backoff = Backoff(self._backoff_initial, self._backoff_max)
        loop = asyncio.get_running_loop()
        reconnect_now = False
        while not worker.retired:
            # Connect lazily, only when there is something to send; but right away after a TTL, so a
            # quiet shipper stays connected (and its output_connected metric stays 1).
            while not self._queue and not worker.retired and not reconnect_now:
                worker.wakeup.clear()
                await worker.wakeup.wait()
            after_ttl, reconnect_now = reconnect_now, False
            endpoint = await self._next_endpoint(worker)
            if endpoint is None:
                return
            try:
                reader, writer = await self._connect(endpoint)
            except (OSError, TimeoutError, ssl_module.SSLError) as exc:
                delay = backoff.next()
                reason = str(exc) or type(exc).__name__
                log.warning("cannot connect to %s: %s; retrying in %.1fs", endpoint, reason, delay)
                reconnect_now = after_ttl  # still replacing a connection: keep trying without work
                await asyncio.sleep(delay)
                continue
            # a reconnection after a ttl is routine: logged only at debug level
            log.log(logging.DEBUG if after_ttl else logging.INFO, "connected to %s", endpoint)
            self.connects += 1
            worker.connected = True
            # a fresh session per connection: nothing of a dead connection's half-read ack carries over
            session = worker.session = WriterSession(self.timeout, self._share(), self.ttl, loop.time())
            if worker.retired:
                session.retire()
            try:
                await self._session(reader, writer, worker.wakeup, session, backoff)
                failed: BaseException | None = None
            except (OSError, TimeoutError, ProtocolError, ssl_module.SSLError, EOFError) as exc:
                failed = exc
            except Exception as exc:
                # A bug must not kill the worker and leave senders waiting forever: log, resend.
                log.exception("unexpected error on the connection to %s", endpoint)
                failed = exc
            finally:
                worker.connected = False
                writer.close()
                # Unacked windows go back to the front, in order, to be resent on the next connection.
                unacked = session.take_unacked()
                if unacked:
                    self._queue.extendleft(reversed(unacked))
                    self._wake()  # another connection may take them sooner
            if failed is None:
                if worker.retired:
                    log.info("closed the connection to %s: no longer resolved", endpoint)
                elif session.retiring:
                    log.debug("connection to %s closed after its ttl of %gs; reconnecting", endpoint, self.ttl)
                    reconnect_now = True
                continue  # TTL, or the peer closed an idle connection: reconnect when there is work
            delay = backoff.next()
            log.warning(
                "connection to %s failed: %s; resending %d window(s) after %.1fs",
                endpoint,
                str(failed) or type(failed).__name__,
                len(self._queue),
                delay,
            )
            await asyncio.sleep(delay)

    async def _connect(self, endpoint: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # TLS checks the name that was configured, whichever of its addresses is connected to
        server_hostname = (self._server_hostname or endpoint.host) if self._ssl else None
        async with asyncio.timeout(self.connect_timeout):
            return await asyncio.open_connection(
                endpoint.address,
                endpoint.port,
                ssl=self._ssl,
                server_hostname=server_hostname,
                ssl_handshake_timeout=self.connect_timeout if self._ssl else None,
            )

    def _closed_before_ack(self, heard: bool) -> str:
        msg = "connection closed by the server before the ack"
        if self._ssl is not None and not heard:
            # Under TLS 1.3 the server judges our certificate after our side of the handshake is done,
            # and an asyncio server closes without an alert: this is all a refused certificate shows.
            msg += (
                " (over TLS this is how a refused client certificate looks: check shipper.output.tls.cert_file"
                " and key_file against the aggregator's listen.tls.ca_file)"
            )
        return msg

    async def _session(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        wakeup: asyncio.Event,
        session: WriterSession[_Window],
        backoff: Backoff,
    ) -> None:
        """Write queued windows and hand acks to `session` until the connection fails (raises), idles out
        or is retired with nothing in flight (returns). The ack and TTL rules live in the sans-IO
        `WriterSession`; this loop only moves bytes and time."""
        loop = asyncio.get_running_loop()
        read_task: asyncio.Task[bytes] | None = None
        wake_task: asyncio.Task[bool] | None = None
        try:
            while True:
                wakeup.clear()
                session.tick(loop.time())
                if session.finished:
                    return
                while self._queue and session.has_room and self._least_loaded(session):
                    window = self._queue.popleft()
                    if window.done.done():
                        continue
                    window.attempts += 1
                    writer.writelines(session.write(window, loop.time()))
                if writer.transport.get_write_buffer_size():
                    async with asyncio.timeout(self.timeout):
                        await writer.drain()
                if read_task is None:
                    read_task = asyncio.ensure_future(reader.read(65536))
                if wake_task is None:
                    wake_task = asyncio.ensure_future(wakeup.wait())
                wake_at = session.wake_at()
                wait = None if wake_at is None else max(0.0, wake_at - loop.time())
                done, _ = await asyncio.wait({read_task, wake_task}, timeout=wait, return_when="FIRST_COMPLETED")
                if not done and session.expired(loop.time()):
                    raise TimeoutError(f"no ack for {self.timeout:g}s")
                if wake_task in done:
                    wake_task = None
                if read_task not in done:
                    continue
                data = read_task.result()
                read_task = None
                if not data:
                    if session.in_flight:
                        raise EOFError(self._closed_before_ack(session.heard))
                    return
                for acked in session.receive(data, loop.time()):
                    backoff.reset()
                    if not acked.done.done():
                        acked.done.set_result(None)
                if self._queue and session.has_room:
                    self._wake()  # room for a queued window on this connection or another
        finally:
            for t in (read_task, wake_task):
                if t is not None:
                    t.cancel()
