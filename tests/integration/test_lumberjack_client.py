"""Lumberjack client over real loopback sockets: acks, resend, failover, load balancing, windows in flight."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable

import orjson
import pytest

from logship.lumberjack import (
    Batch,
    ClientClosed,
    DataFrame,
    Decoder,
    LumberjackClient,
    LumberjackServer,
    ServerLimits,
    WindowFrame,
    encode_ack,
)

FAST = {"timeout": 2.0, "connect_timeout": 1.0, "backoff_initial": 0.05, "backoff_max": 0.2}


class Collector:
    def __init__(self, delay: float = 0.0, fail_first: int = 0) -> None:
        self.batches: list[Batch] = []
        self.delay = delay
        self.fail_first = fail_first
        self.calls = 0

    async def __call__(self, batch: Batch) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("sink unavailable")
        self.batches.append(batch)

    def seqs(self) -> list[int]:
        return [int(e["n"]) for b in self.batches for e in b.events]


def events(n: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"n": i}) for i in range(start, start + n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (polling state no event exposes)
            await asyncio.sleep(0.01)


async def start(
    started: list[LumberjackServer], handler: Collector, port: int = 0, **limits: float
) -> LumberjackServer:
    server = LumberjackServer(
        handler, host="127.0.0.1", port=port, limits=ServerLimits(keepalive_interval=0.1, **limits)
    )
    await server.start()
    started.append(server)
    return server


class Blackhole:
    """A listener that reads windows but acks only when told to: a stuck or slow reader."""

    def __init__(self) -> None:
        self.windows: list[int] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Blackhole:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        decoder = Decoder()
        while data := await reader.read(65536):
            for frame in decoder.feed(data):
                if isinstance(frame, WindowFrame):
                    self.windows.append(frame.size)
                assert isinstance(frame, WindowFrame | DataFrame)

    def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()


async def test_send_returns_once_acked_and_nothing_is_duplicated(servers: list[LumberjackServer]) -> None:
    handler = Collector()
    server = await start(servers, handler)
    client = LumberjackClient([f"127.0.0.1:{server.port}"], **FAST)
    assert not client.connected
    for w in range(5):
        await client.send(events(100, w * 100))
        assert len(handler.batches) == w + 1
    assert client.connected
    assert handler.seqs() == list(range(500))
    await client.send([])  # an empty window is a no-op
    await client.close()


async def test_keepalives_stop_the_client_timing_out(servers: list[LumberjackServer]) -> None:
    handler = Collector(delay=1.2)
    server = await start(servers, handler)
    client = LumberjackClient([f"127.0.0.1:{server.port}"], **{**FAST, "timeout": 0.4})
    await client.send(events(3))
    await client.close()
    assert handler.calls == 1  # no timeout, so no resend


async def test_resends_after_the_server_drops_the_window(servers: list[LumberjackServer]) -> None:
    handler = Collector(fail_first=2)
    server = await start(servers, handler)
    client = LumberjackClient([f"127.0.0.1:{server.port}"], **FAST)
    await client.send(events(10))
    await client.close()
    assert handler.calls == 3
    assert handler.seqs() == list(range(10))


async def test_server_that_starts_late_receives_everything(servers: list[LumberjackServer]) -> None:
    port = free_port()
    client = LumberjackClient([f"127.0.0.1:{port}"], **FAST)
    sending = asyncio.ensure_future(client.send(events(10)))
    await asyncio.sleep(0.5)
    assert not sending.done()
    assert not client.connected
    handler = Collector()
    await start(servers, handler, port=port)
    async with asyncio.timeout(5):
        await sending
    assert handler.seqs() == list(range(10))
    await client.close()


async def test_server_restart_mid_stream_loses_nothing(servers: list[LumberjackServer]) -> None:
    first = Collector()
    server = await start(servers, first)
    port = server.port
    client = LumberjackClient([f"127.0.0.1:{port}"], **FAST)
    await client.send(events(10))
    await server.close(1.0)
    sending = asyncio.ensure_future(client.send(events(10, 10)))
    await asyncio.sleep(0.3)
    second = Collector()
    await start(servers, second, port=port)
    async with asyncio.timeout(5):
        await sending
    assert first.seqs() + second.seqs() == list(range(20))
    await client.close()


class FirstHostFirst(random.Random):
    """The single connection starts at a random host; these tests want the first one."""

    def randrange(self, *_args: object, **_kw: object) -> int:  # type: ignore[override]
        return 0


async def test_no_ack_within_timeout_fails_over_and_resends(servers: list[LumberjackServer]) -> None:
    stuck = await Blackhole().start()
    handler = Collector()
    good = await start(servers, handler)
    client = LumberjackClient(
        [f"127.0.0.1:{stuck.port}", f"127.0.0.1:{good.port}"], rng=FirstHostFirst(), **{**FAST, "timeout": 0.3}
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    await client.send(events(5))
    assert loop.time() - began >= 0.3
    assert stuck.windows == [5]  # it was sent to the first host, which never acked
    assert handler.seqs() == list(range(5))
    await client.close()
    stuck.close()


async def test_failover_skips_a_dead_host(servers: list[LumberjackServer]) -> None:
    handler = Collector()
    good = await start(servers, handler)
    client = LumberjackClient([f"127.0.0.1:{free_port()}", f"127.0.0.1:{good.port}"], **FAST)
    await client.send(events(5))
    await client.send(events(5, 5))
    assert handler.seqs() == list(range(10))
    await client.close()


async def test_loadbalance_spreads_windows_over_hosts(servers: list[LumberjackServer]) -> None:
    a, b = Collector(delay=0.05), Collector(delay=0.05)
    sa, sb = await start(servers, a), await start(servers, b)
    client = LumberjackClient(
        [f"127.0.0.1:{sa.port}", f"127.0.0.1:{sb.port}"], loadbalance=True, max_pending_windows=4, **FAST
    )
    await asyncio.gather(*(client.send(events(10, w * 10)) for w in range(20)))
    await client.close()
    assert len(a.batches) >= 3 and len(b.batches) >= 3
    assert sorted(a.seqs() + b.seqs()) == list(range(200))


async def test_loadbalance_routes_around_a_dead_host(servers: list[LumberjackServer]) -> None:
    handler = Collector()
    good = await start(servers, handler)
    client = LumberjackClient(
        [f"127.0.0.1:{free_port()}", f"127.0.0.1:{good.port}"], loadbalance=True, max_pending_windows=2, **FAST
    )
    await asyncio.gather(*(client.send(events(10, w * 10)) for w in range(6)))
    await client.close()
    assert sorted(handler.seqs()) == list(range(60))


async def test_windows_in_flight_are_bounded_and_acked_in_order() -> None:
    hole = await Blackhole().start()
    client = LumberjackClient([f"127.0.0.1:{hole.port}"], max_pending_windows=2, **{**FAST, "timeout": 30.0})
    sends = [asyncio.ensure_future(client.send(events(3 + w))) for w in range(5)]
    await wait_until(lambda: len(hole.windows) == 2)
    await asyncio.sleep(0.2)
    assert hole.windows == [3, 4]  # only two windows in flight, in order
    writer = hole.writers[0]
    writer.write(encode_ack(0) + encode_ack(3))  # keepalive, then the first window's ack
    await wait_until(lambda: sends[0].done())
    assert not sends[1].done()
    await wait_until(lambda: len(hole.windows) == 3)
    writer.write(encode_ack(2) + encode_ack(4) + encode_ack(5))  # partial ack, then two windows
    await wait_until(lambda: sends[2].done())
    assert [s.done() for s in sends] == [True, True, True, False, False]
    assert hole.windows == [3, 4, 5, 6, 7]
    await client.close()
    for s in sends[3:]:
        with pytest.raises(ClientClosed):
            await s
    hole.close()


async def test_an_ack_beyond_the_window_is_a_protocol_error_and_the_window_is_resent() -> None:
    hole = await Blackhole().start()
    client = LumberjackClient([f"127.0.0.1:{hole.port}"], **FAST)
    sending = asyncio.ensure_future(client.send(events(3)))
    await wait_until(lambda: len(hole.windows) == 1)
    hole.writers[0].write(encode_ack(9))
    await wait_until(lambda: len(hole.windows) == 2)  # reconnected and resent
    assert not sending.done()
    hole.writers[1].write(encode_ack(3))
    async with asyncio.timeout(5):
        await sending
    await client.close()
    hole.close()


async def test_close_fails_pending_sends_and_later_sends() -> None:
    client = LumberjackClient([f"127.0.0.1:{free_port()}"], **FAST)
    sending = asyncio.ensure_future(client.send(events(1)))
    await asyncio.sleep(0.2)
    await client.close()
    with pytest.raises(ClientClosed):
        await sending
    with pytest.raises(ClientClosed):
        await client.send(events(1))


def test_host_parsing() -> None:
    c = LumberjackClient(["a.example", "b.example:6000", "[::1]:5045", "10.0.0.1:5044"])
    assert c.hosts == [("a.example", 5044), ("b.example", 6000), ("::1", 5045), ("10.0.0.1", 5044)]
    for bad in ["", ":5044", "host:0", "host:port"]:
        with pytest.raises(ValueError, match="host"):
            LumberjackClient([bad])
