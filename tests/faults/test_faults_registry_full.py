"""The registry's filesystem fills up: the shipper keeps its last good checkpoint, says why, keeps
shipping, and once space returns writes checkpoints again, with nothing lost or duplicated, even
across a SIGKILL while the disk was full (it then resends from the old checkpoint with the same ids).

The filesystem is a real 256 KiB tmpfs mounted by the test (needs root, as in CI).
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.faults.rig import OUTAGE_S, Rig, wait_for
from tests.faults.smallfs import Filler, SmallFsUnavailable, small_fs

pytestmark = pytest.mark.slow


def _offsets(path: Path) -> dict[str, int]:
    doc = orjson.loads(path.read_bytes())
    return {k: int(v["offset"]) for k, v in doc["files"].items()}


def test_registry_disk_full_then_space_returns(rig: Rig, tmp_path: Path) -> None:
    try:
        fs_cm = small_fs(tmp_path / "regfs", "256k")
        fs = fs_cm.__enter__()
    except SmallFsUnavailable as exc:
        pytest.fail(f"cannot mount the small filesystem this test needs: {exc}")
    try:
        rig.registry_path = fs / "registry.json"
        rig.start_aggregator()
        shipper = rig.start_shipper()
        rig.generate(duration=OUTAGE_S + 8, seed=41)
        wait_for(lambda: rig.registry_path.exists() and sum(_offsets(rig.registry_path).values()) > 0, 30,
                 "a first checkpoint")  # fmt: skip

        filler = Filler(fs)
        filler.fill()
        assert Filler.free_bytes(fs) == 0
        time.sleep(1.0)  # a write that started before the disk filled may still land
        frozen = _offsets(rig.registry_path)
        shipped_before = rig.count()
        time.sleep(max(3.0, OUTAGE_S / 2))
        # the checkpoint stops advancing while the disk is full, but shipping goes on
        assert _offsets(rig.registry_path) == frozen
        assert rig.count() > shipped_before
        assert shipper.metrics().get("logship_shipper_registry_write_errors_total", 0) > 0
        log = rig.log("shipper")
        assert "No space left on device" in log and str(rig.registry_path) in log, log[-3000:]

        # the harshest moment to die: acknowledged events not checkpointed
        shipper.kill()
        shipper.start()
        time.sleep(max(2.0, OUTAGE_S / 2))
        shipper.check_alive()
        assert _offsets(rig.registry_path) == frozen

        filler.release()
        manifest = rig.manifest()
        report = rig.wait_all(manifest)
        assert report.found == manifest["events"]

        # once space is back the checkpoints catch up with everything that was read
        def caught_up() -> bool:
            offsets = _offsets(rig.registry_path)
            return sum(offsets.values()) > sum(frozen.values()) and offsets != frozen

        wait_for(caught_up, 30, "the registry to advance after space returned")
        # beside the registry: its lock and the node's agent identity, and no temp file
        kept = ("registry.json", "registry.json.lock", "agent.json", ".filler")
        assert not [p.name for p in fs.iterdir() if p.name not in kept], "temp files left"
    finally:
        rig.close()
        fs_cm.__exit__(None, None, None)
