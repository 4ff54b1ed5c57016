"""Several aggregators behind the shippers: one SIGKILLed and one added while logs flow, and a fleet of
shippers against three aggregators. Each ends with an exact count in OpenSearch (every event once).

The aggregators are real `logship aggregator` processes listening on 127.0.0.2 … 127.0.0.5 (all of
127/8 is loopback); the shippers list them as their output hosts, with a short `ttl` so connections
move between aggregators during the run. Load per aggregator is read from each one's /metrics
(`logship_aggregator_events_in_total`) and printed (run with `-s` to see it). The run lengths follow
LOGSHIP_FAULT_RUN_S (short in CI, long under `make soak`); LOGSHIP_FAULT_TTL_S sets the shippers' ttl.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest

from logship.demo.pipeline import Service, free_port
from logship.lumberjack import LumberjackClient
from tests.faults.rig import RATE, RUN_S, Rig, wait_for

pytestmark = pytest.mark.slow

TTL_S = float(os.environ.get("LOGSHIP_FAULT_TTL_S", "2"))
FLEET = int(os.environ.get("LOGSHIP_FAULT_FLEET", "50"))
FLEET_RATE = float(os.environ.get("LOGSHIP_FAULT_FLEET_RATE", "1500"))  # events/s over the whole fleet


class Aggregators:
    """Real aggregator processes, each on a loopback address of its own, configured by the rig."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.port = free_port(host="127.0.0.2")
        self.services: dict[str, Service] = {}

    def address(self, n: int) -> str:
        return f"127.0.0.{n + 2}"

    def endpoint(self, n: int) -> str:
        return f"{self.address(n)}:{self.port}"

    def start(self, n: int) -> Service:
        http = free_port()
        self.rig.aggregator_config(
            listen={"host": self.address(n), "port": self.port},
            http={"host": "127.0.0.1", "port": http},
        )
        cfg = self.rig.tmp / f"aggregator-{n}.yml"
        shutil.move(self.rig.tmp / "aggregator.yml", cfg)
        service = Service("aggregator", cfg, {}, http, self.rig.logs / f"aggregator-{n}.log")
        self.services[self.address(n)] = service
        service.start()
        service.wait_ready(60)
        return service

    def events_in(self) -> dict[str, float]:
        out = {}
        for address, service in self.services.items():
            alive = service.proc is not None and service.proc.poll() is None
            out[address] = service.metrics().get("logship_aggregator_events_in_total", 0.0) if alive else -1.0
        return out

    def connected(self) -> list[str]:
        return [a for a, s in self.services.items() if s.metrics().get("logship_lumberjack_connections", 0) > 0]

    def close(self) -> None:
        for service in self.services.values():
            service.stop(timeout=10)

    def diagnostics(self) -> str:
        return "\n".join(f"--- aggregator {a} log:\n{s.log_tail(20)}" for a, s in self.services.items())


@pytest.fixture
def aggregators(rig: Rig) -> Iterator[Aggregators]:
    aggs = Aggregators(rig)
    try:
        yield aggs
    finally:
        aggs.close()


def split(delta: dict[str, float]) -> str:
    total = sum(v for v in delta.values() if v > 0) or 1.0
    return ", ".join(f"{a}: {v:.0f} ({100 * v / total:.0f}%)" for a, v in delta.items())


def test_aggregator_sigkilled_and_one_added_new_one_takes_a_share_after_the_ttl(
    rig: Rig, aggregators: Aggregators
) -> None:
    for n in range(3):
        aggregators.start(n)
    # the fourth is listed from the start and comes up during the run, like a scaled-up replica
    hosts = [aggregators.endpoint(n) for n in range(4)]
    rig.start_shipper(hosts=hosts, output={"ttl": f"{TTL_S}s", "backoff": {"initial": "200ms", "max": "1s"}})
    rig.generate(seed=31, duration=RUN_S + 6 * TTL_S + 6)
    # a few ttls of traffic first, so the connection has visited several aggregators
    wait_for(lambda: rig.count() >= 3 * RATE, 60, "documents before the kill")
    # kill the aggregator the shipper is connected to, with its windows in flight
    wait_for(lambda: bool(aggregators.connected()), 30, "a shipper connection")
    victim = aggregators.connected()[0]
    at_kill = aggregators.events_in()
    aggregators.services[victim].signal(signal.SIGKILL)
    aggregators.services[victim].proc.wait(10)  # type: ignore[union-attr]
    added = aggregators.start(3)
    before = aggregators.events_in()  # the newcomer is ready: the split from here on
    t0 = time.monotonic()
    assert rig.generating(), "the generator finished before the new aggregator came up: raise LOGSHIP_FAULT_RUN_S"
    new = aggregators.address(3)
    wait_for(lambda: aggregators.events_in()[new] > 0, 6 * TTL_S + 30, "the new aggregator's first events")
    reached = time.monotonic() - t0
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    after = aggregators.events_in()
    delta = {a: (after[a] - before[a]) if after[a] >= 0 else -1.0 for a in after}
    print(
        f"\naggregators: killed {victim}; split of events_in up to the kill: {split(at_kill)}\n"
        f"the new aggregator {new} got its first events {reached:.1f}s after it was ready (ttl {TTL_S:g}s)\n"
        f"split from then to the end of the run: {split(delta)}\n"
        f"exact count: {report.found} documents for {report.expected} events, "
        f"missing {len(report.missing)}, duplicates {sum(report.duplicates.values())}"
    )
    assert report.found == report.expected == manifest["events"] > 0
    assert not report.missing and not report.duplicates
    assert rig.shipper is not None
    shipper = rig.shipper.metrics()
    # one connection at a time (between two, a moment with none), opened again at every ttl
    assert shipper["logship_shipper_output_connections"] <= 1
    wait_for(lambda: rig.shipper.metrics().get("logship_shipper_output_connections") == 1, 30, "the connection")  # type: ignore[union-attr]
    assert shipper["logship_shipper_output_connects_total"] >= 4
    assert before[new] == 0 and added.proc is not None and at_kill[victim] > 0
    live = {a: v for a, v in delta.items() if v >= 0}
    assert len(live) == 3 and victim not in live
    # the connection keeps rotating over the live aggregators at each ttl: the newcomer gets a real
    # share, and it does not take everything either
    assert live[new] >= 0.1 * sum(live.values()), split(delta)
    assert all(v > 0 for v in live.values()), split(delta)


def _event(run: str, shipper: int, seq: int) -> bytes:
    return orjson.dumps(
        {
            "@timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "message": f"fleet run={run} shipper={shipper} seq={seq}",
            "tags": ["containers"],
            "@metadata": {"_id": f"{run}-{shipper}-{seq}"},
        }
    )


async def _ship(client: LumberjackClient, run: str, shipper: int, rate: float, until: float) -> int:
    """One shipper: two windows in flight (as max_pending_windows: 2) of 10 events, at its share of the
    rate, until `until`; the number of events sent (ids 0..n-1)."""
    loop = asyncio.get_running_loop()
    next_seq = 0
    window = 10

    async def lane() -> None:
        nonlocal next_seq
        while loop.time() < until:
            started = loop.time()
            first, next_seq = next_seq, next_seq + window
            await client.send([_event(run, shipper, first + i) for i in range(window)])
            await asyncio.sleep(max(0.0, 2 * window / rate - (loop.time() - started)))

    await asyncio.sleep(random.Random(shipper).uniform(0, 1))  # they do not all start at once
    await asyncio.gather(lane(), lane())
    return next_seq


async def test_fifty_shippers_against_three_aggregators_every_event_once(rig: Rig, aggregators: Aggregators) -> None:
    for n in range(3):
        await asyncio.to_thread(aggregators.start, n)
    hosts = [aggregators.endpoint(n) for n in range(3)]
    run = f"r{random.randrange(1 << 30):x}"
    # half balance over every aggregator, half hold one connection that the ttl moves around
    clients = [
        LumberjackClient(
            hosts,
            loadbalance=i % 2 == 0,
            ttl=TTL_S,
            max_pending_windows=2,
            timeout=30.0,
            backoff_initial=0.2,
            backoff_max=2.0,
        )
        for i in range(FLEET)
    ]
    loop = asyncio.get_running_loop()
    until = loop.time() + RUN_S
    ships = asyncio.gather(*(_ship(c, run, i, FLEET_RATE / FLEET, until) for i, c in enumerate(clients)))
    try:
        # the split once every shipper is connected and past its first ttl
        await asyncio.sleep(min(RUN_S / 3, 2 * TTL_S + 1))
        early = await asyncio.to_thread(aggregators.events_in)
        sent = await ships
    finally:
        for c in clients:
            await c.close()
    load = await asyncio.to_thread(aggregators.events_in)
    steady = {a: load[a] - early[a] for a in load}
    total = sum(sent)
    pattern = f"{rig.prefix}logstash-logs-*"

    def indexed() -> int:
        rig.request(f"/{pattern}/_refresh", "POST")
        return int(rig.request(f"/{pattern}/_count?q=message:{run}")["count"])

    await asyncio.to_thread(wait_for, lambda: indexed() >= total, 120, f"{total} documents")
    seen: Counter[tuple[int, int]] = Counter()
    for doc in await asyncio.to_thread(rig.documents):
        m = re.search(rf"fleet run={run} shipper=(\d+) seq=(\d+)", str(doc.get("message", "")))
        assert m is not None, f"unexpected document {doc}"
        seen[(int(m.group(1)), int(m.group(2)))] += 1
    expected = {(i, s) for i, n in enumerate(sent) for s in range(n)}
    missing = expected - set(seen)
    duplicates = sum(k - 1 for k in seen.values() if k > 1)
    print(
        f"\n{FLEET} shippers, {RUN_S:g}s, ttl {TTL_S:g}s: {total} events sent, {len(seen)} distinct in OpenSearch, "
        f"missing {len(missing)}, duplicates {duplicates}\nload per aggregator (events_in), whole run: {split(load)}"
        f"\nafter the first {2 * TTL_S + 1:g}s: {split(steady)}"
    )
    assert total > 0 and not missing and duplicates == 0 and set(seen) == expected
    assert all(v >= 0.2 * sum(steady.values()) for v in steady.values()), f"unbalanced: {split(steady)}"
