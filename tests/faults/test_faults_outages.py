"""Outages: OpenSearch paused or stopped, no aggregator at the shipper's start, connections cut.

Each test writes logs throughout the outage and ends with an exact count in OpenSearch. Outages last
LOGSHIP_FAULT_OUTAGE_S seconds (10 in CI, 60 in the soak). OpenSearch is paused and stopped on a node
of this module's own (`fault-*`), never on the shared one.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.faults.conftest import PlainNode
from tests.faults.proxy import TcpProxy
from tests.faults.rig import OUTAGE_S, Rig, wait_for

pytestmark = pytest.mark.slow

ACKED = "logship_shipper_events_acked_total"


def _acked(rig: Rig) -> float:
    assert rig.shipper is not None
    return rig.shipper.metrics().get(ACKED, -1.0)


def test_opensearch_paused_then_resumed(private_rig: Rig, private_opensearch: PlainNode) -> None:
    rig = private_rig
    rig.start_aggregator()
    rig.start_shipper()
    rig.generate(duration=OUTAGE_S + 6, seed=31)
    wait_for(lambda: rig.count() > 100, 30, "documents before the pause")
    pid = private_opensearch.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(min(3.0, OUTAGE_S / 2))  # in-flight acks settle
        acked_during = _acked(rig)
        time.sleep(OUTAGE_S - min(3.0, OUTAGE_S / 2))
        # nothing can be acknowledged while OpenSearch cannot accept it: acks are end to end
        assert _acked(rig) == acked_during
        assert rig.aggregator is not None
        rig.aggregator.check_alive()
        rig.shipper.check_alive()  # type: ignore[union-attr]
    finally:
        os.kill(pid, signal.SIGCONT)
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    assert _acked(rig) >= manifest["events"]


def test_opensearch_stopped_then_started(private_rig: Rig, private_opensearch: PlainNode) -> None:
    rig = private_rig
    rig.start_aggregator()
    rig.start_shipper()
    rig.generate(duration=OUTAGE_S + 8, seed=32)
    wait_for(lambda: rig.count() > 100, 30, "documents before the stop")
    private_opensearch.stop()
    stopped = time.monotonic()
    try:
        time.sleep(min(3.0, OUTAGE_S / 2))
        acked_during = _acked(rig)
        remaining = OUTAGE_S - (time.monotonic() - stopped)
        if remaining > 0:
            time.sleep(remaining)
        assert _acked(rig) == acked_during
        # the aggregator says what is wrong and keeps retrying
        assert rig.aggregator is not None
        rig.aggregator.check_alive()
        status = rig.aggregator.metrics()
        assert status  # the ops endpoint still answers
    finally:
        private_opensearch.start()
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    # it said why, and that it keeps trying
    agg_log = rig.log("aggregator")
    assert "cannot reach OpenSearch" in agg_log and "retrying in" in agg_log, agg_log[-2000:]


def test_no_aggregator_for_the_first_seconds_of_the_shipper(rig: Rig) -> None:
    """The seed's late Logstash: the shipper starts first, retries with backoff, loses nothing."""
    rig.start_shipper(ready=False)
    rig.generate(duration=OUTAGE_S + 4, seed=33)
    time.sleep(OUTAGE_S)
    assert rig.shipper is not None
    rig.shipper.check_alive()
    assert rig.count() <= 0
    rig.start_aggregator()
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    log = rig.log("shipper")
    assert f"cannot connect to 127.0.0.1:{rig.lj_port}" in log and "retrying in" in log, log[-2000:]


def test_connections_cut_mid_window_by_a_proxy(rig: Rig) -> None:
    rig.start_aggregator()
    with TcpProxy("127.0.0.1", rig.lj_port) as proxy:
        # small windows, no compression: a cut after a few KiB lands inside a window
        rig.start_shipper(hosts=[f"127.0.0.1:{proxy.port}"], output={"compression_level": 0, "window_size": 200})
        rig.generate(seed=34)
        cuts = 0
        while rig.generating():  # cut only while lines are being written, so every cut lands
            wait_for(lambda: proxy.open_connections > 0, 30, "the shipper to reconnect")
            proxy.cut_after(2000 + 500 * (cuts % 4))
            deadline = time.monotonic() + 10
            while proxy.cuts == cuts and rig.generating() and time.monotonic() < deadline:
                time.sleep(0.05)
            proxy.disarm()
            cuts = proxy.cuts
            time.sleep(0.3)
        manifest = rig.manifest()
        report = rig.wait_all(manifest)
    assert cuts >= 5
    assert report.found == manifest["events"]
    assert proxy.connections_total > cuts  # it reconnected after every cut
    # the cuts really fell inside windows, and those windows were not acknowledged
    assert rig.log("aggregator").count("peer closed mid-window") >= 3
