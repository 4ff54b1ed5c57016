"""Outages with rotations inside them: the scenario a user hits, not one fault at a time.

20 container files rotated kubelet-style on a clock (`0.log` -> `0.log.<ts>`, the previous generation
gzipped, generations beyond 5 deleted) and the app log copytruncated, while the aggregator is absent,
OpenSearch is paused, or the shipper is SIGKILLed or SIGTERMed under backpressure. Each test ends with
an exact count in OpenSearch (missing 0, duplicates 0) and the loss metric at 0: nothing here makes
bytes unreachable, so any loss is a bug. Outages last LOGSHIP_FAULT_OUTAGE_S (10 in CI, 600 in the soak).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from tests.faults.conftest import PlainNode
from tests.faults.rig import OUTAGE_S, Rig, rss_mib, wait_for

pytestmark = pytest.mark.slow

LOST = "logship_shipper_bytes_lost_total"
# kubelet every few seconds per file (5 s in the soak), generations gzipped and pruned beyond 5
ROTATE_EVERY = min(5.0, max(2.0, OUTAGE_S / 5))


def rotating(**over: Any) -> dict[str, Any]:
    return {
        "pods": 20,
        "rotate": "kubelet",
        "rotate_every": ROTATE_EVERY,
        "rotate_bytes": 1 << 30,  # by the clock only
        "rotate_keep": 5,
        "app_copytruncate_every": ROTATE_EVERY,
        "rate": 300,
        **over,
    }


def assert_nothing_lost(rig: Rig) -> None:
    assert rig.shipper is not None
    assert rig.shipper.metrics().get(LOST, -1.0) == 0.0, rig.diagnostics()


def test_no_aggregator_while_kubelet_rotates_and_logrotate_copytruncates(rig: Rig) -> None:
    """The seed's first pain with rotations inside it: the aggregator comes up OUTAGE_S late."""
    rig.start_shipper(ready=False)
    rig.generate(**rotating(duration=OUTAGE_S + 4, seed=41))
    time.sleep(OUTAGE_S)
    assert rig.shipper is not None
    rig.shipper.check_alive()
    assert rig.count() <= 0
    open_files = rig.shipper.metrics().get("logship_shipper_open_files", -1)
    rss = rss_mib(rig.shipper)
    rig.start_aggregator()
    manifest = rig.manifest()
    assert manifest["rotations"] >= 20 * 2, "rotations did not fall inside the outage"
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    assert_nothing_lost(rig)
    print(f"outage {OUTAGE_S:.0f}s: shipper RSS {rss:.1f} MiB, {open_files:.0f} files open at its end")


def test_opensearch_paused_while_files_rotate(private_rig: Rig, private_opensearch: PlainNode) -> None:
    rig = private_rig
    rig.start_aggregator()
    rig.start_shipper()
    rig.generate(**rotating(duration=OUTAGE_S + 6, seed=42))
    wait_for(lambda: rig.count() > 100, 60, "documents before the pause")
    pid = private_opensearch.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(OUTAGE_S)
        assert rig.aggregator is not None and rig.shipper is not None
        rig.aggregator.check_alive()
        rig.shipper.check_alive()
    finally:
        os.kill(pid, signal.SIGCONT)
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    assert_nothing_lost(rig)


def test_aggregator_killed_and_absent_while_files_rotate(rig: Rig) -> None:
    rig.start_aggregator()
    rig.start_shipper()
    rig.generate(**rotating(duration=OUTAGE_S + 6, seed=43))
    wait_for(lambda: rig.count() > 100, 60, "documents before the kill")
    assert rig.aggregator is not None
    rig.aggregator.kill()
    time.sleep(OUTAGE_S)
    rig.start_aggregator()
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    assert_nothing_lost(rig)


def test_shipper_sigkilled_during_the_outage_finds_rotated_generations_by_identity(rig: Rig) -> None:
    rig.start_shipper(ready=False)
    rig.generate(**rotating(duration=OUTAGE_S + 6, seed=44))
    time.sleep(OUTAGE_S / 2)
    assert rig.shipper is not None
    rig.shipper.kill()  # mid-outage: nothing acknowledged, registered generations rotate on without it
    time.sleep(ROTATE_EVERY * 1.5)  # at least one rotation (and a gzip) while it is gone
    rig.start_shipper(ready=False)
    time.sleep(OUTAGE_S / 2)
    rig.start_aggregator()
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    assert_nothing_lost(rig)
    assert "found again as" in rig.log("shipper") or "rotated while the shipper was not running" in rig.log("shipper")


@pytest.mark.parametrize("stop_at", [0.5, 2.0, 5.0])
def test_sigterm_while_blocked_on_a_full_queue_then_restart(rig: Rig, stop_at: float) -> None:
    """SIGTERM with the output blocked at several points: no checkpoint past an unsent event, so the
    restarted shipper sends everything."""
    # ready: its signal handlers are installed (a SIGTERM during start-up is the default, fatal, one)
    rig.start_shipper(output={"window_size": 50, "max_pending_windows": 1, "queue_windows": 1})
    rig.generate(**rotating(duration=OUTAGE_S, seed=45))
    time.sleep(stop_at)
    assert rig.shipper is not None
    assert rig.shipper.stop(timeout=30) == 0  # graceful, within shutdown_timeout
    time.sleep(1.0)
    rig.start_shipper(ready=False)
    rig.start_aggregator()
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    assert_nothing_lost(rig)
