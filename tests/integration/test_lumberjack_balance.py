"""Balancing over real loopback sockets: the connection TTL, names that resolve to several aggregators
(127.0.0.2 and 127.0.0.3 are loopback addresses like 127.0.0.1), and an answer that changes while
windows flow. Every test also checks that each event arrived exactly once."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

import pytest

from logship.lumberjack import LumberjackClient, LumberjackServer, ServerLimits
from tests.integration.test_lumberjack_client import FAST, Collector, events, free_port, wait_until


async def serve(started: list[LumberjackServer], handler: Collector, host: str = "127.0.0.1", port: int = 0) -> int:
    server = LumberjackServer(handler, host=host, port=port, limits=ServerLimits(keepalive_interval=0.1))
    await server.start()
    started.append(server)
    return server.port


def shared_port(*hosts: str) -> int:
    """A port free on every one of these loopback addresses (a name's addresses share the port)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = int(s.getsockname()[1])
        try:
            for h in hosts:
                with socket.socket() as t:
                    t.bind((h, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no shared free port")


class Feeder:
    """Sends numbered windows one after another (two at a time) until stopped."""

    def __init__(self, client: LumberjackClient, size: int = 5) -> None:
        self.client = client
        self.size = size
        self.sent = 0
        self.stopping = False

    async def run(self) -> None:
        async def one() -> None:
            while not self.stopping:
                start = self.sent
                self.sent += self.size
                await self.client.send(events(self.size, start))
                await asyncio.sleep(0.02)

        await asyncio.gather(one(), one())


def exactly_once(collectors: list[Collector], total: int) -> None:
    counts = Counter(n for c in collectors for n in c.seqs())
    assert sorted(counts) == list(range(total)), "missing events"
    assert max(counts.values()) == 1, f"duplicates: {[n for n, k in counts.items() if k > 1][:10]}"


async def test_ttl_reconnects_only_after_the_windows_in_flight_are_acked(servers: list[LumberjackServer]) -> None:
    handler = Collector(delay=0.3)  # windows are still in flight whenever the TTL runs out
    port = await serve(servers, handler)
    client = LumberjackClient([f"127.0.0.1:{port}"], ttl=1.0, max_pending_windows=2, **FAST)
    feeder = Feeder(client)
    task = asyncio.ensure_future(feeder.run())
    await asyncio.sleep(4.0)
    feeder.stopping = True
    await task
    await client.close()
    assert client.connects >= 3  # one connection per TTL
    exactly_once([handler], feeder.sent)  # a resend would show as a duplicate


async def test_without_ttl_one_connection_carries_everything(servers: list[LumberjackServer]) -> None:
    handler = Collector()
    port = await serve(servers, handler)
    client = LumberjackClient([f"127.0.0.1:{port}"], **FAST)
    for w in range(20):
        await client.send(events(5, w * 5))
        await asyncio.sleep(0.05)
    await client.close()
    assert client.connects == 1
    exactly_once([handler], 100)


async def test_failover_with_ttl_rotates_over_every_host(servers: list[LumberjackServer]) -> None:
    handlers = [Collector(), Collector(), Collector()]
    ports = [await serve(servers, h) for h in handlers]
    client = LumberjackClient([f"127.0.0.1:{p}" for p in ports], ttl=1.0, **FAST)
    feeder = Feeder(client)
    task = asyncio.ensure_future(feeder.run())
    await wait_until(lambda: all(h.batches for h in handlers), within=10.0)
    feeder.stopping = True
    await task
    await client.close()
    exactly_once(handlers, feeder.sent)


async def test_a_name_balances_over_its_addresses_and_follows_the_answer(servers: list[LumberjackServer]) -> None:
    a, b, c = Collector(), Collector(), Collector()
    port = shared_port("127.0.0.2", "127.0.0.3", "127.0.0.4")
    for handler, host in ((a, "127.0.0.2"), (b, "127.0.0.3"), (c, "127.0.0.4")):
        await serve(servers, handler, host, port)
    answer = ["127.0.0.2", "127.0.0.3"]

    async def lookup(host: str, _port: int) -> list[str]:
        assert host == "aggregator-headless"
        return list(answer)

    client = LumberjackClient(
        [f"aggregator-headless:{port}"], loadbalance=True, ttl=1.0, max_pending_windows=4, lookup=lookup, **FAST
    )
    feeder = Feeder(client)
    task = asyncio.ensure_future(feeder.run())
    try:
        await wait_until(lambda: bool(a.batches and b.batches), within=10.0)
        assert not c.batches
        # a replica is added and another removed: within a TTL or two the new one takes windows...
        answer[:] = ["127.0.0.3", "127.0.0.4"]
        await wait_until(lambda: bool(c.batches), within=10.0)
        await wait_until(lambda: [e.address for e in client.endpoints] == ["127.0.0.3", "127.0.0.4"], within=10.0)
        # ...and the removed one gets nothing more once its last windows were acked
        await asyncio.sleep(0.5)
        before = len(a.batches)
        await asyncio.sleep(1.5)
        assert len(a.batches) == before
        assert len(c.batches) > 0 and len(b.batches) > 0
    finally:
        feeder.stopping = True
        await task
        await client.close()
    exactly_once([a, b, c], feeder.sent)


async def test_a_lookup_failure_keeps_the_connections(servers: list[LumberjackServer]) -> None:
    handler = Collector()
    port = await serve(servers, handler, "127.0.0.2")
    calls = 0

    async def lookup(host: str, _port: int) -> list[str]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise socket.gaierror(-3, "Temporary failure in name resolution")
        return ["127.0.0.2"]

    client = LumberjackClient([f"aggregator-headless:{port}"], loadbalance=True, ttl=1.0, lookup=lookup, **FAST)
    feeder = Feeder(client)
    task = asyncio.ensure_future(feeder.run())
    await asyncio.sleep(3.0)
    feeder.stopping = True
    await task
    await client.close()
    assert calls >= 2 and client.connects >= 2
    exactly_once([handler], feeder.sent)


async def test_a_quiet_client_reconnects_at_once_after_its_ttl_and_stays_connected(
    servers: list[LumberjackServer],
) -> None:
    handler = Collector()
    port = await serve(servers, handler)
    client = LumberjackClient([f"127.0.0.1:{port}"], ttl=1.0, **FAST)
    await client.send(events(3))
    await asyncio.sleep(2.6)  # nothing to send: the ttl alone moves the connection
    assert client.connects >= 3 and client.connected
    await client.send(events(3, 3))
    await client.close()
    exactly_once([handler], 6)


async def test_test_output_checks_every_address_of_a_name(
    servers: list[LumberjackServer], capsys: pytest.CaptureFixture[str]
) -> None:
    from shipper.app import _test_output
    from shipper.config import ShipperConfig

    port = shared_port("127.0.0.2", "127.0.0.3")
    await serve(servers, Collector(), "127.0.0.2", port)  # nothing listens on 127.0.0.3

    async def lookup(host: str, _port: int) -> list[str]:
        return ["127.0.0.2", "127.0.0.3"]

    host = f"aggregator-headless:{port}"
    failover = ShipperConfig.from_dict({"output": {"hosts": [host]}})
    assert await _test_output(failover, [host], lookup) == 0  # one answering address is enough
    out = capsys.readouterr().out
    assert f"{host}: connection OK" in out and "  127.0.0.2: OK" in out and "  127.0.0.3: FAILED" in out
    balanced = ShipperConfig.from_dict({"output": {"hosts": [host], "loadbalance": True}})
    assert await _test_output(balanced, [host], lookup) == 1  # every address carries windows
    assert f"{host}: FAILED" in capsys.readouterr().out


async def test_after_a_ttl_a_quiet_client_skips_a_dead_host_and_reconnects(servers: list[LumberjackServer]) -> None:
    handler = Collector()
    good = await serve(servers, handler)
    dead = free_port()
    client = LumberjackClient([f"127.0.0.1:{good}", f"127.0.0.1:{dead}"], ttl=1.0, **FAST)
    await client.send(events(2))
    await asyncio.sleep(3.5)  # the rotation meets the dead host while there is nothing to send
    assert client.connected and client.connects >= 2
    await client.close()
    exactly_once([handler], 2)


async def test_workers_open_that_many_connections_to_each_endpoint(servers: list[LumberjackServer]) -> None:
    handler = Collector(delay=0.05)
    port = await serve(servers, handler)
    host = f"127.0.0.1:{port}"
    # the same endpoint listed twice is still one endpoint: `workers` is what multiplies connections
    client = LumberjackClient([host, host], loadbalance=True, workers=3, max_pending_windows=6, **FAST)
    feeder = Feeder(client)
    task = asyncio.ensure_future(feeder.run())
    try:
        await wait_until(lambda: client.connections == 3, within=10.0)
        await asyncio.sleep(0.5)
        assert client.connections == 3
        assert len(client.endpoints) == 3 and len(set(client.endpoints)) == 1
    finally:
        feeder.stopping = True
        await task
        await client.close()
    exactly_once([handler], feeder.sent)


async def test_rotating_workers_start_on_different_endpoints(servers: list[LumberjackServer]) -> None:
    handlers = [Collector(delay=0.2), Collector(delay=0.2)]
    ports = [await serve(servers, h) for h in handlers]
    client = LumberjackClient([f"127.0.0.1:{p}" for p in ports], workers=2, max_pending_windows=2, **FAST)
    feeder = Feeder(client)
    task = asyncio.ensure_future(feeder.run())
    try:
        # no ttl and no failure: only two workers on two endpoints reach both aggregators
        await wait_until(lambda: all(h.batches for h in handlers), within=10.0)
        assert client.connects == 2
    finally:
        feeder.stopping = True
        await task
        await client.close()
    exactly_once(handlers, feeder.sent)
