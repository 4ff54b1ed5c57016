"""Lumberjack v2 server (the reader side, like Logstash's beats input).

Each connection has a task that reads and decodes windows and starts the handler on every complete
window as one Batch in its own task, and a task that acks each window's highest seq once its handler
returned (the ack is end-to-end), strictly in window order, with keepalive acks while any window is
pending. Up to `max_windows_in_flight` windows per connection are handled at once, so a writer that
pipelines windows keeps several bulk requests busy; with that many unacked, the connection reads
nothing more (backpressure: memory per connection stays bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from logship.lumberjack.codec import ProtocolError, encode_ack
from logship.lumberjack.connection import ConnectionClosed, ReaderConnection, ReceivedWindow, ServerLimits
from logship.lumberjack.windows import WindowScheduler

__all__ = [
    "Batch",
    "BatchHandler",
    "LumberjackServer",
    "ServerLimits",
    "WindowDecoder",
    "decode_event",
    "decode_events",
    "malformed_event",
]

log = logging.getLogger("logship.lumberjack.server")

READ_CHUNK = 256 * 1024
DEFAULT_LIMITS = ServerLimits()


@dataclass
class Batch:
    events: list[Any]  # what the server's `decode` made of the window's payloads: dicts by default
    peer: str


BatchHandler = Callable[[Batch], Awaitable[None]]
# A window's payloads -> (its events, how many were not JSON objects)
WindowDecoder = Callable[[list[bytes]], tuple[list[Any], int]]


MALFORMED_FLAG = "malformed_json"
_Kept = TypeVar("_Kept")


def malformed_event(payload: bytes) -> dict[str, Any]:
    return {"message": payload.decode("utf-8", errors="replace"), "log": {"flags": [MALFORMED_FLAG]}}


def decode_event(payload: bytes) -> dict[str, Any]:
    """A J payload as an event; anything but a JSON object is kept as text with a flag, never dropped."""
    return decode_events([payload])[0][0]


@overload
def decode_events(payloads: list[bytes]) -> tuple[list[dict[str, Any]], int]: ...


@overload
def decode_events(
    payloads: list[bytes], keep: Callable[[bytes], _Kept | None]
) -> tuple[list[dict[str, Any] | _Kept], int]: ...


def decode_events(
    payloads: list[bytes], keep: Callable[[bytes], _Kept | None] | None = None
) -> tuple[list[dict[str, Any] | _Kept], int]:
    """The window's events, and how many of them were not JSON objects (kept as flagged text).

    `keep`: a payload it returns something for is that something instead of a decoded dict (how the
    aggregator keeps logship shipper events as bytes, aggregator/splice.py).
    """
    events: list[dict[str, Any] | _Kept] = []
    malformed = 0
    loads = orjson.loads
    for payload in payloads:
        if keep is not None:
            kept = keep(payload)
            if kept is not None:
                events.append(kept)
                continue
        try:
            event = loads(payload)
        except orjson.JSONDecodeError:
            event = None
        if type(event) is not dict:
            event = malformed_event(payload)
            malformed += 1
        events.append(event)
    return events, malformed


class _Metrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.enabled = registry is not None
        if registry is None:
            return
        self.connections = Gauge("logship_lumberjack_connections", "Open lumberjack connections", registry=registry)
        self.windows = Counter("logship_lumberjack_windows_received", "Complete windows received", registry=registry)
        self.events = Counter("logship_lumberjack_events_received", "Events received", registry=registry)
        self.errors = Counter(
            "logship_lumberjack_protocol_errors",
            "Connections closed for a protocol error or timeout",
            ["reason"],
            registry=registry,
        )


class _Connection:
    """State shared by one connection's reading task, acking task and window handler tasks."""

    def __init__(self, peer: str, limits: ServerLimits, now: float) -> None:
        self.peer = peer
        self.proto = ReaderConnection(limits, now)  # frames, windows, limits, idle clock (sans-IO)
        self.windows: WindowScheduler = self.proto.windows
        self.handling: dict[int, asyncio.Future[None]] = {}  # ticket -> handler task
        self.errors: dict[int, BaseException] = {}  # ticket -> why its handler failed
        self.progress = asyncio.Event()  # a window started or finished, or reading ended: the acker looks
        self.room = asyncio.Event()  # windows were acked: the reader may take the next one
        self.reading: asyncio.Task[None] | None = None
        self.reading_done = False

    def finished(self, ticket: int, handling: asyncio.Future[None]) -> None:
        del self.handling[ticket]
        error = asyncio.CancelledError() if handling.cancelled() else handling.exception()
        if error is not None:
            self.errors[ticket] = error
        self.windows.finish(ticket, error is None)
        self.progress.set()


class LumberjackServer:
    def __init__(
        self,
        handler: BatchHandler,
        *,
        host: str = "0.0.0.0",
        port: int = 5044,
        ssl: ssl_module.SSLContext | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
        registry: CollectorRegistry | None = None,
        decode: WindowDecoder | None = None,
    ) -> None:
        self._handler = handler
        self._decode: WindowDecoder = decode_events if decode is None else decode
        self._host = host
        self._port = port
        self._ssl = ssl
        self.limits = limits
        self._metrics = _Metrics(registry)
        self._server: asyncio.Server | None = None
        self._tasks: dict[asyncio.Task[None], _Connection] = {}
        self._closing = False

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection,
            self._host,
            self._port,
            ssl=self._ssl,
            # The handshake is done by the listener: per-connection start_tls races the first bytes
            # on uvloop. The cost: a failed handshake is not logged here (asyncio only logs it in
            # debug mode); the client logs the reason.
            ssl_handshake_timeout=min(30.0, self.limits.idle_timeout) if self._ssl else None,
            limit=READ_CHUNK,
        )
        log.info("lumberjack listening on %s:%d%s", self._host, self.port, " (TLS)" if self._ssl else "")

    async def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()
            # wait_closed() would also wait for open connections (3.12+); closing the listener is enough.

    async def close(self, timeout: float) -> None:  # noqa: ASYNC109  (contract: bounded drain)
        """Stop accepting, let windows being handled finish and be acked (up to `timeout`), close the rest."""
        self._closing = True
        await self.stop_accepting()
        for task, conn in list(self._tasks.items()):
            if not conn.windows.pending:
                task.cancel()
            else:
                if conn.reading is not None:
                    conn.reading.cancel()  # take no new window; the acker finishes those in flight
                conn.progress.set()  # and ends the connection once they are acked (see _send_acks)
        pending = list(self._tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                log.warning("closing %d connection(s) whose windows did not finish within %.1fs", len(still), timeout)
                await asyncio.wait(still)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if self._closing:
            writer.close()
            return
        if self.limits.max_connections and len(self._tasks) >= self.limits.max_connections:
            log.warning("refusing connection from %s: already %d connections (max_connections)", peer, len(self._tasks))
            if self._metrics.enabled:
                self._metrics.errors.labels("too_many_connections").inc()
            writer.close()
            return
        conn = self._tasks[task] = _Connection(peer, self.limits, asyncio.get_running_loop().time())
        if self._metrics.enabled:
            self._metrics.connections.inc()
        log.debug("connection from %s", peer)
        try:
            await self._serve(conn, reader, writer)
        except ConnectionClosed as exc:
            log.log(exc.level, "closing connection from %s: %s", peer, exc)
            if self._metrics.enabled and exc.reason:
                self._metrics.errors.labels(exc.reason).inc()
        except ProtocolError as exc:
            log.warning("closing connection from %s: protocol error: %s", peer, exc)
            if self._metrics.enabled:
                self._metrics.errors.labels(exc.reason).inc()
        except (ConnectionError, ssl_module.SSLError, OSError) as exc:
            log.info("connection from %s lost: %s", peer, exc)
        except asyncio.CancelledError:
            log.debug("connection from %s closed by shutdown", peer)
        finally:
            del self._tasks[task]
            if self._metrics.enabled:
                self._metrics.connections.dec()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read windows in one task and ack them in order in another, until either ends the connection."""
        acking = asyncio.create_task(self._send_acks(conn, writer))
        reading = conn.reading = asyncio.create_task(self._read_windows(conn, reader))
        try:
            await asyncio.wait({acking, reading}, return_when=asyncio.FIRST_COMPLETED)
            if reading.done():
                if not reading.cancelled():
                    reading.result()  # a protocol error or timeout: close now, nothing more is acked
                # The peer closed its side, or shutdown: ack what is in flight, then close.
                conn.reading_done = True
                conn.progress.set()
            await acking
        finally:
            tasks = (reading, acking, *conn.handling.values())
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    async def _read_windows(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        """Bytes in, windows to their handlers; the rules are `ReaderConnection`'s."""
        loop = asyncio.get_running_loop()
        proto = conn.proto
        while True:
            try:
                async with asyncio.timeout_at(proto.read_deadline(loop.time())):
                    data = await reader.read(READ_CHUNK)
            except TimeoutError:
                proto.check_idle(loop.time())
                continue
            if not data:
                proto.eof()
                log.debug("connection from %s closed by peer", conn.peer)
                return
            for window in proto.receive(data):
                # Backpressure: with no room, nothing more is read (nor decoded) from this peer.
                while not proto.windows.has_room():
                    conn.room.clear()
                    await conn.room.wait()
                if self._closing:
                    return  # not handed over: the writer resends it to another aggregator
                self._start_window(conn, window, proto.admit(window, loop.time()))

    def _start_window(self, conn: _Connection, window: ReceivedWindow, ticket: int) -> None:
        events, malformed = self._decode(window.payloads)
        if malformed:
            # One line per window, not per event: a misconfigured sender must not flood the log.
            log.warning(
                "%d of %d event(s) from %s are not JSON objects; delivered as text flagged %s",
                malformed,
                len(events),
                conn.peer,
                MALFORMED_FLAG,
            )
        if self._metrics.enabled:
            self._metrics.windows.inc()
            self._metrics.events.inc(len(window.payloads))
        handling = asyncio.ensure_future(self._handler(Batch(events=events, peer=conn.peer)))
        conn.handling[ticket] = handling
        handling.add_done_callback(functools.partial(conn.finished, ticket))
        conn.progress.set()  # the acker starts keepalives for it

    async def _send_acks(self, conn: _Connection, writer: asyncio.StreamWriter) -> None:
        """Final acks in window order as handlers finish; keepalives while a window is pending."""
        loop = asyncio.get_running_loop()
        interval = self.limits.keepalive_interval
        windows = conn.windows
        while True:
            conn.progress.clear()
            acks = windows.take_acks()
            if acks:
                for seq in acks:
                    writer.write(encode_ack(seq))
                conn.room.set()
                conn.proto.acked(loop.time())
                await self._drain(writer)
                continue  # more windows may have finished during the drain
            ticket = windows.failed_head
            if ticket is not None:
                raise ConnectionClosed(
                    f"batch handler failed: {conn.errors.get(ticket)!r}; that window and the "
                    f"{windows.pending - 1} after it not acked",
                    "",
                    logging.ERROR,
                )
            if not windows.pending:
                # Shutting down, reading was stopped by close(): nothing more can arrive to be acked.
                if conn.reading_done or self._closing:
                    return
                await conn.progress.wait()
                continue
            try:
                async with asyncio.timeout(interval):
                    await conn.progress.wait()
            except TimeoutError:
                # Seqs restart at 1 in every window and the oldest pending window has none acked: any
                # other number would be read as part of it done. 0 only says "alive, keep waiting".
                writer.write(encode_ack(0))
                await self._drain(writer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(writer.drain(), self.limits.idle_timeout)
        except TimeoutError:
            raise ConnectionClosed("peer does not read its acks", "ack_write_timeout") from None
