"""Rotation storms: rename, copytruncate and kubelet rotation several times a second per file, and
1,000 files created and deleted; every line exactly once, and no file handle or registry entry left.

copytruncate can only be lossless when the shipper has read a file to its end before it is
truncated (logrotate copies then truncates, and lines written in between are gone for every tailer):
the generator pauses LOGSHIP_FAULT_ROTATE_QUIET_S (0.1 s) before each copytruncate, as logrotate's
`delaycompress`-style setups give readers time. rename and kubelet rotation need no pause: the open
file handle keeps the rotated (even deleted) file readable.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from tests.faults.rig import RUN_S, Rig, wait_for

pytestmark = pytest.mark.slow

QUIET_S = float(os.environ.get("LOGSHIP_FAULT_ROTATE_QUIET_S", "0.1"))


# (bytes per generation, generations kept): at ~16 KiB/s per container file, rename and copytruncate
# rotate every ~0.4 s per file; kubelet every ~1 s (10 times what kubelet does, which checks every
# 10 s), because it gzips the previous file at each rotation and a generation the shipper never
# opened before that is gone for any tailer.
STORMS = {"rename": (6 * 1024, 10), "copytruncate": (6 * 1024, 3), "kubelet": (16 * 1024, 5)}


@pytest.mark.parametrize("style", list(STORMS))
def test_rotation_storm(rig: Rig, style: str) -> None:
    rig.start_aggregator()
    rig.start_shipper()
    size, keep = STORMS[style]
    rig.generate(
        rotate=style,
        rotate_bytes=size,
        rotate_keep=keep,
        rotate_quiet=QUIET_S if style == "copytruncate" else 0.0,
        seed=51,
    )
    manifest = rig.manifest()
    rotations = sum(s.get("rotations", 0) for s in manifest["sources"])
    # 4 container files: at least one rotation per file every ~1.5 s
    assert rotations >= 4 * RUN_S / 1.5, f"only {rotations} rotations: not a storm"
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]


def _fds(pid: int) -> int:
    return psutil.Process(pid).num_fds()


def test_thousand_files_created_and_deleted(rig: Rig) -> None:
    storm = rig.root / "storm"
    storm.mkdir()
    rig.start_aggregator()
    shipper = rig.start_shipper(
        inputs=[{"type": "app", "paths": [str(storm / "*.log")], "tags": ["app"]}],
        close_inactive="2s",
        registry={"clean_after": "3s"},
    )
    assert shipper.proc is not None
    fds_before = _fds(shipper.proc.pid)
    expected: set[str] = set()
    waves, per_wave, lines = 10, 100, 3
    previous: list[Path] = []
    for w in range(waves):
        current = []
        for i in range(per_wave):
            n = w * per_wave + i
            path = storm / f"f{n:04d}.log"
            msgs = [f"{rig.prefix}storm-{n}-{j}" for j in range(lines)]
            path.write_text("".join(m + "\n" for m in msgs))
            expected.update(msgs)
            current.append(path)
        time.sleep(0.5)
        for p in previous:  # delete the wave before: it had a second to be found and read
            p.unlink()
        previous = current
    time.sleep(1.0)
    for p in previous:
        p.unlink()
    assert len(expected) == waves * per_wave * lines

    wait_for(lambda: rig.count() >= len(expected), 120, f"{len(expected)} documents")
    time.sleep(1.5)
    docs = rig.documents()
    messages = [d["message"] for d in docs]
    assert len(messages) == len(expected), f"{len(messages)} documents for {len(expected)} lines"
    assert set(messages) == expected

    # every deleted file is released and forgotten: no leaked handles, no registry growth
    wait_for(lambda: shipper.metrics().get("logship_shipper_open_files", -1) == 0, 30, "open files back to 0")
    wait_for(lambda: _fds(shipper.proc.pid) <= fds_before + 5, 30, "file descriptors back to the baseline")  # type: ignore[union-attr]

    def registry_cleaned() -> bool:
        import orjson

        return len(orjson.loads(rig.registry_path.read_bytes())["files"]) == 0

    wait_for(registry_cleaned, 30, "registry entries of deleted files cleaned")
