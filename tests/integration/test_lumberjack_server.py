"""Lumberjack server over real loopback sockets: windows, acks, keepalives, limits, bad peers, shutdown."""

from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import pytest
from prometheus_client import CollectorRegistry

from logship.lumberjack import AckDecoder, Batch, LumberjackServer, ServerLimits, encode_window

FAST = ServerLimits(idle_timeout=5.0, keepalive_interval=0.1)


@dataclass
class Collector:
    batches: list[Batch] = field(default_factory=list)
    delay: float = 0.0
    fail_first: int = 0
    gate: asyncio.Event | None = None

    async def __call__(self, batch: Batch) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("sink unavailable")
        self.batches.append(batch)

    @property
    def events(self) -> list[dict[str, object]]:
        return [e for b in self.batches for e in b.events]


Factory = Callable[..., Awaitable[tuple[LumberjackServer, Collector]]]


@pytest.fixture
async def serve() -> AsyncIterator[Factory]:
    servers: list[LumberjackServer] = []

    async def start(
        limits: ServerLimits = FAST, registry: CollectorRegistry | None = None, **collector: object
    ) -> tuple[LumberjackServer, Collector]:
        handler = Collector(**collector)  # type: ignore[arg-type]
        server = LumberjackServer(handler, host="127.0.0.1", port=0, limits=limits, registry=registry)
        await server.start()
        servers.append(server)
        return server, handler

    yield start
    for s in servers:
        await s.close(1.0)


class Peer:
    """A raw writer speaking bytes, to send exactly what a test needs (including bad input)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.acks = reader, writer, AckDecoder()
        self.seen: list[int] = []  # every ack received, keepalives included

    @classmethod
    async def connect(cls, server: LumberjackServer) -> Peer:
        return cls(*await asyncio.open_connection("127.0.0.1", server.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_acks(self, until: int, within: float = 5.0) -> list[int]:
        got: list[int] = []
        async with asyncio.timeout(within):
            while until not in got:
                data = await self.reader.read(1024)
                if not data:
                    raise EOFError(f"closed after acks {got}")
                got += self.acks.feed(data)
        self.seen += got
        return got

    async def closed_by_server(self, within: float = 5.0) -> bool:
        async with asyncio.timeout(within):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    return True
                if not data:
                    return True
                self.seen += self.acks.feed(data)

    def close(self) -> None:
        self.writer.close()


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (polling state no event exposes)
            await asyncio.sleep(0.01)


def events(n: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"n": i, "message": f"line {i}"}) for i in range(start, start + n)]


@pytest.mark.parametrize("level", [0, 3])
async def test_window_is_one_batch_acked_with_its_last_seq(serve: Factory, level: int) -> None:
    server, handler = await serve()
    peer = await Peer.connect(server)
    await peer.send(encode_window(events(5), level))
    assert (await peer.read_acks(5))[-1] == 5
    assert len(handler.batches) == 1
    assert [e["n"] for e in handler.events] == [0, 1, 2, 3, 4]
    assert handler.batches[0].peer.startswith("127.0.0.1:")
    peer.close()


async def test_pipelined_windows_are_handled_and_acked_in_order(serve: Factory) -> None:
    server, handler = await serve()
    peer = await Peer.connect(server)
    await peer.send(encode_window(events(3)) + encode_window(events(2, 3), 1) + encode_window(events(4, 5)))
    acks = await peer.read_acks(4)
    assert [a for a in acks if a] == [3, 2, 4]
    assert [len(b.events) for b in handler.batches] == [3, 2, 4]
    assert [e["n"] for e in handler.events] == list(range(9))
    peer.close()


async def test_ack_waits_for_the_handler_and_keepalives_are_sent_meanwhile(serve: Factory) -> None:
    server, _handler = await serve(delay=0.55)
    peer = await Peer.connect(server)
    await peer.send(encode_window(events(2)))
    acks = await peer.read_acks(2)
    assert acks[-1] == 2
    assert acks.count(0) >= 3  # keepalive every 0.1s while the handler ran 0.55s
    assert set(acks[:-1]) == {0}
    peer.close()


async def test_malformed_json_is_delivered_flagged_not_dropped(
    serve: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = await serve()
    peer = await Peer.connect(server)
    await peer.send(encode_window([b'{"ok":1}', b"plain text \xff\xfe", b"[1,2]", b'{"ok":2}']))
    await peer.read_acks(4)
    assert handler.events == [
        {"ok": 1},
        {"message": "plain text \ufffd\ufffd", "log": {"flags": ["malformed_json"]}},
        {"message": "[1,2]", "log": {"flags": ["malformed_json"]}},
        {"ok": 2},
    ]
    assert "2 of 4 event(s) from 127.0.0.1:" in caplog.text
    assert "flagged malformed_json" in caplog.text
    peer.close()


async def test_handler_failure_closes_without_ack(serve: Factory, caplog: pytest.LogCaptureFixture) -> None:
    server, handler = await serve(fail_first=1)
    peer = await Peer.connect(server)
    await peer.send(encode_window(events(3)))
    assert await peer.closed_by_server()
    assert [a for a in peer.seen if a] == []  # keepalives at most, never the ack
    assert "batch handler failed" in caplog.text
    # The writer resends on a new connection; this time it is handled and acked.
    again = await Peer.connect(server)
    await again.send(encode_window(events(3)))
    assert (await again.read_acks(3))[-1] == 3
    assert len(handler.batches) == 1
    again.close()


async def test_a_pending_window_stops_reading_from_that_connection(serve: Factory) -> None:
    gate = asyncio.Event()
    server, handler = await serve(gate=gate)
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.transport.set_write_buffer_limits(high=0)  # drain() waits until the kernel took the bytes
    chunk = encode_window(events(1000))
    sent = 0
    # The first window blocks in the handler; the server must not read (and buffer) what follows.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2.0):
            while True:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
    # Socket buffers hold a few MB at most; unbounded reading would have taken everything we wrote.
    assert sent < 64 << 20
    assert len(handler.batches) == 0
    gate.set()
    await wait_until(lambda: bool(handler.batches))
    writer.transport.abort()


# -- limits and bad peers: the offender is closed with a logged reason, others keep working ------


async def assert_others_unaffected(server: LumberjackServer, handler: Collector) -> None:
    before = len(handler.batches)
    peer = await Peer.connect(server)
    await peer.send(encode_window(events(2)))
    assert (await peer.read_acks(2))[-1] == 2
    assert len(handler.batches) == before + 1
    peer.close()


def zip_bomb(inflated: int) -> bytes:
    body = zlib.compress(b"2J" + struct.pack(">II", 1, inflated) + bytes(inflated), 9)
    return b"2W\x00\x00\x00\x01" + b"2C" + struct.pack(">I", len(body)) + body


BAD_INPUT = {
    "frame_too_large": (b"2W\x00\x00\x00\x01" + b"2J" + struct.pack(">II", 1, 2 << 20), "exceeds max_frame_bytes"),
    "window_too_large": (b"2W" + struct.pack(">I", 1001), "exceeds max_window_size 1000"),
    "decompressed_too_large": (zip_bomb(8 << 20), "max_decompressed_bytes"),
    "bad_version": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40), "looks like a TLS handshake"),
    "unsupported_version": (b"1W\x00\x00\x00\x01", "unsupported protocol version '1'"),
    "unknown_frame": (b"2Z\x00\x00\x00\x00", "unknown frame type 'Z'"),
    "unexpected_frame": (b"2J" + struct.pack(">II", 1, 2) + b"{}", "data frame outside a window"),
}


@pytest.mark.parametrize("reason", sorted(BAD_INPUT))
async def test_bad_input_closes_only_the_offender(
    serve: Factory, caplog: pytest.LogCaptureFixture, reason: str
) -> None:
    limits = ServerLimits(
        max_frame_bytes=1 << 20, max_window_size=1000, max_decompressed_bytes=1 << 20, idle_timeout=5.0
    )
    registry = CollectorRegistry()
    server, handler = await serve(limits=limits, registry=registry)
    bystander = await Peer.connect(server)  # an open connection in the middle of a window
    await bystander.send(encode_window(events(2))[:20])
    data, message = BAD_INPUT[reason]
    offender = await Peer.connect(server)
    await offender.send(data)
    assert await offender.closed_by_server()
    assert message in caplog.text
    assert "closing connection from 127.0.0.1:" in caplog.text
    assert registry.get_sample_value("logship_lumberjack_protocol_errors_total", {"reason": reason}) == 1
    await assert_others_unaffected(server, handler)
    await bystander.send(encode_window(events(2))[20:])
    assert (await bystander.read_acks(2))[-1] == 2
    assert handler.batches[-1].events == [orjson.loads(e) for e in events(2)]
    bystander.close()


async def test_truncated_frame_at_eof_is_logged_and_not_delivered(
    serve: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = await serve()
    peer = await Peer.connect(server)
    await peer.send(encode_window(events(3))[:-5])
    peer.writer.write_eof()
    assert await peer.closed_by_server()
    assert "peer closed mid-window (2 of 3 events" in caplog.text
    assert handler.batches == []
    await assert_others_unaffected(server, handler)


async def test_idle_connection_is_closed(serve: Factory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    server, handler = await serve(limits=ServerLimits(idle_timeout=0.3))
    idle = await Peer.connect(server)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await idle.closed_by_server()
    assert 0.25 <= loop.time() - started < 3.0
    assert "idle for 0.3s" in caplog.text
    await assert_others_unaffected(server, handler)


async def test_slow_drip_connection_times_out_despite_steady_bytes(
    serve: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = await serve(limits=ServerLimits(idle_timeout=0.5))
    drip = await Peer.connect(server)
    wire = encode_window(events(2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    closed = False
    # One byte every 50 ms: each read is quick, but the whole window would take seconds.
    for i in range(len(wire)):
        try:
            await drip.send(wire[i : i + 1])
        except ConnectionError:
            closed = True
            break
        await asyncio.sleep(0.05)
        if drip.reader.at_eof() or drip.writer.is_closing():
            closed = True
            break
        if loop.time() - started > 0.8 and not closed:
            closed = await drip.closed_by_server(within=1.0)
            break
    assert closed
    assert loop.time() - started < 2.0
    assert "window not complete within 0.5s" in caplog.text
    assert handler.batches == []
    await assert_others_unaffected(server, handler)


# -- shutdown and metrics ----------------------------------------------------------------------


async def test_close_lets_a_pending_window_finish_and_ack(serve: Factory) -> None:
    server, handler = await serve(delay=0.3)
    peer = await Peer.connect(server)
    idle = await Peer.connect(server)
    await peer.send(encode_window(events(2)))
    await asyncio.sleep(0.1)
    assert server.connections == 2
    await server.close(5.0)
    assert (await peer.read_acks(2))[-1] == 2
    assert len(handler.batches) == 1
    assert await idle.closed_by_server()
    assert server.connections == 0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_close_is_bounded_when_the_handler_hangs(serve: Factory) -> None:
    server, _handler = await serve(gate=asyncio.Event())
    peer = await Peer.connect(server)
    await peer.send(encode_window(events(2)))
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await server.close(0.3)
    assert loop.time() - started < 2.0
    assert await peer.closed_by_server()
    assert peer.seen and [a for a in peer.seen if a] == []  # keepalives only: the window was not acked


async def test_stop_accepting_keeps_open_connections(serve: Factory) -> None:
    server, _handler = await serve()
    peer = await Peer.connect(server)
    await asyncio.sleep(0.05)
    await server.stop_accepting()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)
    await peer.send(encode_window(events(2)))
    assert (await peer.read_acks(2))[-1] == 2
    peer.close()


async def test_metrics(serve: Factory) -> None:
    registry = CollectorRegistry()
    server, _handler = await serve(registry=registry)
    peer = await Peer.connect(server)
    await peer.send(encode_window(events(3)) + encode_window(events(2), 5))
    await peer.read_acks(2)
    assert registry.get_sample_value("logship_lumberjack_connections") == 1
    assert registry.get_sample_value("logship_lumberjack_windows_received_total") == 2
    assert registry.get_sample_value("logship_lumberjack_events_received_total") == 5
    peer.close()
    await wait_until(lambda: server.connections == 0)
    assert registry.get_sample_value("logship_lumberjack_connections") == 0


async def test_window_bytes_limit_bounds_a_window_of_many_frames(
    serve: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = await serve(limits=ServerLimits(max_window_bytes=1000, idle_timeout=5.0))
    peer = await Peer.connect(server)
    await peer.send(encode_window([b'{"m":"' + b"x" * 190 + b'"}'] * 10))  # each frame small, sum 2000
    assert await peer.closed_by_server()
    assert "exceed max_window_bytes 1000" in caplog.text
    assert handler.batches == []
    await assert_others_unaffected(server, handler)


async def test_connections_over_the_limit_are_refused(serve: Factory, caplog: pytest.LogCaptureFixture) -> None:
    server, handler = await serve(limits=ServerLimits(max_connections=2, idle_timeout=5.0))
    first, second = await Peer.connect(server), await Peer.connect(server)
    await wait_until(lambda: server.connections == 2)
    third = await Peer.connect(server)
    assert await third.closed_by_server()
    assert "already 2 connections (max_connections)" in caplog.text
    first.close()
    await wait_until(lambda: server.connections == 1)
    await assert_others_unaffected(server, handler)
    second.close()
