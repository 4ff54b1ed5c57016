"""Lumberjack v2 client (the writer side, like Filebeat's logstash output).

`send()` queues one window and returns once the reader acked all of it. One worker per connection
target takes queued windows, writes them in order and matches acks in order; when a connection fails
or goes silent for `timeout` (keepalive acks count as signs of life), its unacked windows go back to
the front of the queue and are resent on the next connection, after a backoff with full jitter.

Without loadbalance there is one worker that moves through `hosts` in order on failures; with it,
one worker per host, and whichever is connected and free takes the next window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from logship.backoff import Backoff
from logship.lumberjack.codec import ProtocolError, encode_window
from logship.lumberjack.session import WriterSession

log = logging.getLogger("logship.lumberjack.client")

DEFAULT_PORT = 5044


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


@dataclass(eq=False)
class _Window:
    frame: bytes
    count: int
    done: asyncio.Future[None]
    attempts: int = field(default=0)


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
    ) -> None:
        if not hosts:
            raise ValueError("at least one host is required")
        if not 0 <= compression_level <= 9:
            raise ValueError("compression_level must be between 0 (off) and 9")
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
        self.max_pending_windows = max(1, max_pending_windows)
        self._slots = asyncio.Semaphore(self.max_pending_windows)
        # With load balancing each connection takes only its share, so the others get windows too.
        workers = len(self.hosts) if loadbalance else 1
        self._per_worker = -(-self.max_pending_windows // workers)
        self._queue: deque[_Window] = deque()
        self._wakeups: list[asyncio.Event] = []
        self._workers: list[asyncio.Task[None]] = []
        self._sessions: list[WriterSession[_Window]] = []
        self._connected: set[int] = set()
        self._closed = False

    @property
    def connected(self) -> bool:
        return bool(self._connected)

    async def send(self, events: Sequence[bytes]) -> None:
        """Send one window (each item one JSON-encoded event); return once it is acked.

        Retries forever across reconnects; raises ClientClosed if close() is called first.
        """
        if self._closed:
            raise ClientClosed("client is closed")
        if not events:
            return
        async with self._slots:
            if self._closed:
                raise ClientClosed("client is closed")
            loop = asyncio.get_running_loop()
            window = _Window(encode_window(events, self.compression_level), len(events), loop.create_future())
            self._start_workers()
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
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        pending = list(self._queue)
        for session in self._sessions:
            pending.extend(session.take_unacked())
        self._queue.clear()
        for window in pending:
            if not window.done.done():
                window.done.set_exception(ClientClosed("client closed before the window was acknowledged"))
                window.done.exception()  # mark retrieved: the sender may have given up already

    # -- workers ---------------------------------------------------------------------------------

    def _start_workers(self) -> None:
        if self._workers:
            return
        targets = [[i] for i in range(len(self.hosts))] if self.loadbalance else [list(range(len(self.hosts)))]
        for n, indices in enumerate(targets):
            self._wakeups.append(asyncio.Event())
            self._sessions.append(WriterSession(self.timeout, self._per_worker))
            self._workers.append(asyncio.create_task(self._worker(n, indices), name=f"lumberjack-client-{n}"))

    def _wake(self) -> None:
        for event in self._wakeups:
            event.set()

    async def _worker(self, n: int, host_indices: list[int]) -> None:
        backoff = Backoff(self._backoff_initial, self._backoff_max)
        wakeup = self._wakeups[n]
        cursor = 0
        while True:
            # Connect lazily: only when there is something to send.
            while not self._queue:
                wakeup.clear()
                await wakeup.wait()
            index = host_indices[cursor]
            host, port = self.hosts[index]
            try:
                reader, writer = await self._connect(host, port)
            except (OSError, TimeoutError, ssl_module.SSLError) as exc:
                delay = backoff.next()
                log.warning(
                    "cannot connect to %s:%d: %s; retrying in %.1fs",
                    host,
                    port,
                    str(exc) or type(exc).__name__,
                    delay,
                )
                cursor = (cursor + 1) % len(host_indices)
                await asyncio.sleep(delay)
                continue
            log.info("connected to %s:%d", host, port)
            self._connected.add(n)
            # a fresh session per connection: nothing of a dead connection's half-read ack carries over
            session = self._sessions[n] = WriterSession(self.timeout, self._per_worker)
            try:
                await self._session(reader, writer, wakeup, session, backoff)
                failed: BaseException | None = None
            except (OSError, TimeoutError, ProtocolError, ssl_module.SSLError, EOFError) as exc:
                failed = exc
            except Exception as exc:
                # A bug must not kill the worker and leave senders waiting forever: log, resend.
                log.exception("unexpected error on the connection to %s:%d", host, port)
                failed = exc
            finally:
                self._connected.discard(n)
                writer.close()
                # Unacked windows go back to the front, in order, to be resent on the next connection.
                unacked = session.take_unacked()
                if unacked:
                    self._queue.extendleft(reversed(unacked))
                    self._wake()  # another connection may take them sooner
            if failed is None:
                continue  # the peer closed an idle connection: reconnect when there is work
            delay = backoff.next()
            log.warning(
                "connection to %s:%d failed: %s; resending %d window(s) after %.1fs",
                host,
                port,
                str(failed) or type(failed).__name__,
                len(self._queue),
                delay,
            )
            cursor = (cursor + 1) % len(host_indices)
            await asyncio.sleep(delay)

    async def _connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        server_hostname = (self._server_hostname or host) if self._ssl else None
        async with asyncio.timeout(self.connect_timeout):
            return await asyncio.open_connection(
                host,
                port,
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
        """Write queued windows and hand acks to `session` until the connection fails (raises) or idles
        out (returns). The ack rules live in the sans-IO `WriterSession`; this loop only moves bytes."""
        loop = asyncio.get_running_loop()
        read_task: asyncio.Task[bytes] | None = None
        wake_task: asyncio.Task[bool] | None = None
        try:
            while True:
                wakeup.clear()
                while self._queue and session.has_room:
                    window = self._queue.popleft()
                    if window.done.done():
                        continue
                    window.attempts += 1
                    writer.write(session.write(window, loop.time()))
                if writer.transport.get_write_buffer_size():
                    async with asyncio.timeout(self.timeout):
                        await writer.drain()
                if read_task is None:
                    read_task = asyncio.ensure_future(reader.read(65536))
                if wake_task is None:
                    wake_task = asyncio.ensure_future(wakeup.wait())
                wait = None if session.deadline is None else max(0.0, session.deadline - loop.time())
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
                    wakeup.set()  # room for a queued window on this connection
        finally:
            for t in (read_task, wake_task):
                if t is not None:
                    t.cancel()
