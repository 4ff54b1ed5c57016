"""Lumberjack server, several windows per connection in flight: real loopback sockets, raw writer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from logship.lumberjack import AckDecoder, Batch, LumberjackServer, ServerLimits, encode_window

LIMITS = ServerLimits(idle_timeout=5.0, keepalive_interval=0.1, max_windows_in_flight=4)


class Handler:
    """Records how many windows are in the handler at once; window `w` waits for gates[w] if set."""

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.delays: dict[int, float] = {}
        self.fail: set[int] = set()
        self.active = 0
        self.max_active = 0
        self.started: list[int] = []
        self.finished: list[int] = []

    async def __call__(self, batch: Batch) -> None:
        w = int(batch.events[0]["w"])
        self.started.append(w)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if w in self.gates:
                await self.gates[w].wait()
            await asyncio.sleep(self.delays.get(w, 0.0))
            if w in self.fail:
                raise RuntimeError(f"sink rejected window {w}")
            self.finished.append(w)
        finally:
            self.active -= 1


def window(w: int, n: int) -> bytes:
    """Window number `w` of `n` events: its final ack is `n`, so sizes tell the acks apart."""
    return encode_window([orjson.dumps({"w": w, "i": i}) for i in range(n)])


Start = Callable[..., Awaitable[tuple[LumberjackServer, Handler]]]


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    servers: list[LumberjackServer] = []

    async def start(limits: ServerLimits = LIMITS) -> tuple[LumberjackServer, Handler]:
        handler = Handler()
        server = LumberjackServer(handler, host="127.0.0.1", port=0, limits=limits)
        await server.start()
        servers.append(server)
        return server, handler

    yield start
    for s in servers:
        await s.close(1.0)


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.decoder = reader, writer, AckDecoder()
        self.acks: list[int] = []  # every ack received in order, keepalives (0) included
        self.closed = False

    @classmethod
    async def connect(cls, server: LumberjackServer) -> Peer:
        return cls(*await asyncio.open_connection("127.0.0.1", server.port))

    async def send(self, *windows: bytes) -> None:
        self.writer.write(b"".join(windows))
        await self.writer.drain()

    async def read_for(self, seconds: float) -> None:
        """Collect acks for `seconds`, or until the server closes the connection."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._read_until(lambda: False)

    async def read_until(self, done: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            await self._read_until(done)

    async def _read_until(self, done: Callable[[], bool]) -> None:
        while not done() and not self.closed:
            try:
                data = await self.reader.read(1024)
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                return
            self.acks += self.decoder.feed(data)

    @property
    def final_acks(self) -> list[int]:
        return [a for a in self.acks if a]

    def close(self) -> None:
        self.writer.close()


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (polling the handler's state)
            await asyncio.sleep(0.01)


async def test_windows_sent_back_to_back_are_in_the_handler_at_once(serve: Start) -> None:
    server, handler = await serve()
    gate = handler.gates[1] = handler.gates[2] = asyncio.Event()
    peer = await Peer.connect(server)
    await peer.send(window(1, 3), window(2, 5))
    await wait_until(lambda: handler.active == 2)  # window 2 started while window 1 is still running
    assert peer.final_acks == []
    gate.set()
    await peer.read_until(lambda: 5 in peer.acks)
    assert peer.final_acks == [3, 5]
    peer.close()


async def test_acks_go_out_in_window_order_when_a_later_window_finishes_first(serve: Start) -> None:
    server, handler = await serve()
    first = handler.gates[1] = asyncio.Event()
    peer = await Peer.connect(server)
    await peer.send(window(1, 3), window(2, 5), window(3, 7))
    await wait_until(lambda: handler.finished == [2, 3])
    await peer.read_for(0.4)
    assert peer.final_acks == []  # windows 2 and 3 are done but wait for window 1
    assert peer.acks.count(0) >= 2  # keepalives for the oldest pending window meanwhile
    first.set()
    await peer.read_until(lambda: 7 in peer.acks)
    assert peer.final_acks == [3, 5, 7]
    peer.close()


async def test_failed_window_and_later_ones_are_not_acked_earlier_one_is(
    serve: Start, caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = await serve()
    handler.delays[1] = 0.3  # still running when window 2 fails
    handler.fail.add(2)
    peer = await Peer.connect(server)
    await peer.send(window(1, 3), window(2, 5), window(3, 7))
    await peer.read_until(lambda: False)  # until the server closes
    assert peer.closed
    assert peer.final_acks == [3]
    assert 1 in handler.finished and 2 not in handler.finished  # window 3 may have run too: it is resent
    assert "batch handler failed" in caplog.text and "sink rejected window 2" in caplog.text
    assert server.connections == 0


async def test_at_most_max_windows_in_flight_reach_the_handler(serve: Start) -> None:
    server, handler = await serve(ServerLimits(idle_timeout=5.0, keepalive_interval=0.1, max_windows_in_flight=3))
    gate = asyncio.Event()
    for w in range(20):
        handler.gates[w] = gate
    peer = await Peer.connect(server)
    await peer.send(*(window(w, 2 + w) for w in range(20)))
    await wait_until(lambda: handler.active == 3)
    await asyncio.sleep(0.5)  # the other 17 windows sit in socket buffers, not in the handler
    assert handler.started == [0, 1, 2]
    gate.set()
    await peer.read_until(lambda: 21 in peer.acks)
    assert peer.final_acks == [2 + w for w in range(20)]
    assert handler.finished == list(range(20))
    assert handler.max_active == 3
    peer.close()


async def test_unacked_bytes_bound_the_windows_in_flight(serve: Start) -> None:
    # Each window's payloads are 10 x 13 bytes: once two are unacked (260 >= 200), the third waits.
    limits = ServerLimits(idle_timeout=5.0, keepalive_interval=0.1, max_windows_in_flight=8, max_window_bytes=200)
    server, handler = await serve(limits)
    gate = asyncio.Event()
    for w in range(6):
        handler.gates[w] = gate
    peer = await Peer.connect(server)
    await peer.send(*(window(w, 10) for w in range(6)))
    await wait_until(lambda: handler.active == 2)
    await asyncio.sleep(0.3)
    assert handler.started == [0, 1]
    gate.set()
    await peer.read_until(lambda: peer.final_acks.count(10) == 6)
    assert handler.max_active == 2
    peer.close()


async def test_keepalives_continue_while_any_window_is_pending(serve: Start) -> None:
    server, handler = await serve()
    handler.delays[1] = 0.3
    handler.delays[2] = 0.9
    peer = await Peer.connect(server)
    await peer.send(window(1, 3), window(2, 5))
    await peer.read_until(lambda: 5 in peer.acks)
    between = peer.acks[peer.acks.index(3) + 1 : peer.acks.index(5)]
    assert peer.acks.index(3) >= 2  # keepalives before window 1's ack
    assert len(between) >= 3 and set(between) == {0}  # and after it, while window 2 is pending
    peer.close()


async def test_a_window_handled_longer_than_idle_timeout_is_not_an_idle_connection(serve: Start) -> None:
    server, handler = await serve(ServerLimits(idle_timeout=0.4, keepalive_interval=0.1))
    handler.delays[1] = 1.0
    peer = await Peer.connect(server)
    await peer.send(window(1, 3))
    await peer.read_until(lambda: 3 in peer.acks)
    assert not peer.closed
    await peer.read_for(1.0)  # now it is idle, and closed
    assert peer.closed


async def test_close_waits_for_every_window_in_flight(serve: Start) -> None:
    server, handler = await serve()
    handler.delays.update({1: 0.3, 2: 0.5})
    peer = await Peer.connect(server)
    await peer.send(window(1, 3), window(2, 5))
    await wait_until(lambda: handler.active == 2)
    await server.close(5.0)
    assert handler.finished == [1, 2]
    await peer.read_until(lambda: False)
    assert peer.final_acks == [3, 5]
    assert peer.closed
