"""Window compression on one core: zlib (Filebeat's, and what logship used before) against ISA-L.

    .venv/bin/python -m benchmarks.compression [--windows 8] [--window 2048] [--repeat 5]

The input is windows of real shipper events (`shipper.event.EventBuilder` over container-log-like
messages of mixed words and request ids), framed as `encode_window` frames them. For each codec and
level it reports CPU MB/s of input (best of `--repeat`) and the size ratio, and checks that the stream
inflates with the standard zlib. Prints a table and writes benchmarks/results/compression-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from isal import isal_zlib

from benchmarks.codec import RESULTS, make_events
from benchmarks.conditions import machine
from logship.lumberjack.codec import encode_window, isal_level
from shipper.event import EventBuilder
from shipper.identity import FileIdentity
from shipper.records import Record

CODECS: list[tuple[str, int, Callable[[bytes, int], bytes]]] = [
    *(("zlib", level, zlib.compress) for level in (1, 3, 6)),
    *(("isal", level, isal_zlib.compress) for level in (0, 1, 2, 3)),
]


def shipper_windows(windows: int, window: int) -> list[bytes]:
    """Uncompressed window bodies of shipper events, as the client would compress them."""
    builder = EventBuilder(
        path="/var/log/containers/api-7d9f_default_api-" + "0123456789abcdef" * 4 + ".log",
        identity=FileIdentity(2049, 123456, b"x" * 2048, "node-1"),
        host_name="ip-10-0-1-23.ec2.internal",
        tags=["containers"],
        fields={},
        input_type="containers",
        sidecar=False,
    )
    builder.set_runtime("containerd")
    lines = make_events(windows * window)
    out = []
    for w in range(windows):
        records = [
            Record(i * 256, i * 256 + 256, i * 256 + 256, lines[i].decode(), "stdout", None, ())
            for i in range(w * window, (w + 1) * window)
        ]
        out.append(encode_window(builder.build_all(records, "2026-12-02T01:02:03.456Z"), 0))
    return out


def measure(bodies: list[bytes], compress: Callable[[bytes, int], bytes], level: int, repeat: int) -> dict[str, Any]:
    total = sum(len(b) for b in bodies)
    best = float("inf")
    compressed = 0
    for _ in range(repeat):
        t0 = time.process_time()
        outs = [compress(b, level) for b in bodies]
        best = min(best, time.process_time() - t0)
        compressed = sum(len(o) for o in outs)
        assert all(zlib.decompress(o) == b for o, b in zip(outs, bodies, strict=True)), "not a zlib stream"
    return {"mb_per_cpu_s": round(total / best / 1e6, 1), "ratio": round(total / compressed, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compression")
    p.add_argument("--windows", type=int, default=8)
    p.add_argument("--window", type=int, default=2048)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    bodies = shipper_windows(a.windows, a.window)
    mib = sum(len(b) for b in bodies) / 2**20
    print(f"{a.windows} windows of {a.window} shipper events, {mib:.1f} MiB, best of {a.repeat}")
    rows = []
    for name, level, compress in CODECS:
        row = {"codec": name, "level": level, **measure(bodies, compress, level, a.repeat)}
        rows.append(row)
        print(f"  {name:5} level {level}: {row['mb_per_cpu_s']:7.1f} MB per CPU s, ratio {row['ratio']:5.2f}")
    mapping = {level: isal_level(level) for level in range(1, 10)}
    print(f"  compression_level -> ISA-L level: {mapping}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"compression-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    result = {"benchmark": "compression", "params": vars(a), "rows": rows, "isal_levels": mapping, "machine": machine()}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
