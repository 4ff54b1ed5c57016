"""What the benchmarks write: files shaped like an EKS node, by the project's own generator.

Pre-written sets (as fast as possible, before the shipper starts) measure throughput; a live
`logship loggen` process writing at a fixed rate is the load of the latency and outage cases; the
probe writes marker lines of its own and remembers when each one hit the disk.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.procs import PYTHON, Measured, spawn
from logship.loggen import GenConfig, Generator
from logship.loggen.formats import CRI, DOCKER, encode_docker

# `{"log":"<msg>\n","stream":"stdout","time":"2026-11-26T21:37:22.504806000Z"}\n` is 71 bytes
# around the message: a 185-byte message makes the 256-byte line of the targets.
DOCKER_OVERHEAD = 71
# `2026-11-26T21:37:22.504806000Z stdout F <msg>\n` is 41 bytes around the message
CRI_OVERHEAD = 41


def message_bytes(line_bytes: int, fmt: str = DOCKER) -> int:
    return max(16, line_bytes - (CRI_OVERHEAD if fmt == CRI else DOCKER_OVERHEAD))


@dataclass
class FileSet:
    root: Path
    files: int
    lines: int
    bytes: int
    run_id: str
    fmt: str = DOCKER

    @property
    def glob(self) -> str:
        return str(self.root / "var/log/containers/*.log")

    @property
    def avg_line_bytes(self) -> float:
        return self.bytes / self.lines if self.lines else 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "bytes": self.bytes,
            "avg_line_bytes": round(self.avg_line_bytes, 1),
            "format": "docker json-file" if self.fmt == DOCKER else "cri",
        }


def prewrite(root: Path, files: int, lines: int, line_bytes: int, seed: int = 1, fmt: str = DOCKER) -> FileSet:
    """`lines` Docker json-file (or CRI) lines of `line_bytes` spread over `files` container logs."""
    root.mkdir(parents=True, exist_ok=True)
    size = message_bytes(line_bytes, fmt)
    gen = Generator(
        GenConfig(
            root=root,
            rate=0,
            lines=lines,
            pods=files,
            format=fmt,
            line_min=size,
            line_max=size,
            app_share=0,
            seed=seed,
            manifest=root / "manifest.json",
        )
    )
    manifest = gen.run()
    return FileSet(root, files, int(manifest["events"]), int(manifest["bytes"]), gen.run_id, fmt)


def start_live_load(
    root: Path, rate: float, duration: float, files: int, line_bytes: int, workdir: Path, name: str = "loggen"
) -> Measured:
    """`logship loggen` in its own process, writing `rate` lines/s for `duration` seconds."""
    argv = [
        PYTHON, "-m", "logship", "loggen", "-o", str(root), "--rate", str(rate), "--duration", str(duration),
        "--pods", str(files), "--format", "docker", "--line-bytes", str(message_bytes(line_bytes)),
        "--app-share", "0", "--seed", str(int(time.time()) % 100000), "-q",
    ]  # fmt: skip
    return spawn(name, argv, workdir)


class ProbeWriter:
    """Writes one uniquely marked line at a time into its own container log and notes when."""

    def __init__(self, root: Path) -> None:
        self.token = "lsprobe" + uuid.uuid4().hex[:12]
        self.dir = root / "var/log/pods/bench_probe_0000/probe"
        self.dir.mkdir(parents=True, exist_ok=True)
        link_dir = root / "var/log/containers"
        link_dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "0.log"
        link = link_dir / f"probe_bench_probe-{'0' * 64}.log"
        if not link.is_symlink():
            link.symlink_to(path)
        self._fh = open(path, "ab", buffering=0)
        self.written: dict[int, float] = {}
        self.seq = 0

    def write(self) -> int:
        seq = self.seq
        self.seq += 1
        data = encode_docker(f"{self.token} seq={seq} probe line", "stdout", time.time_ns())
        self._fh.write(data)
        self.written[seq] = time.time()
        return seq

    def close(self) -> None:
        self._fh.close()


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
