"""Shipper throughput: one `logship shipper` process -> a blackhole Lumberjack server on loopback.

    .venv/bin/python -m benchmarks.shipper_blackhole [--files 1,100,1000] [--lines 1000000]

Pre-writes 256-byte Docker json-file lines into a kubelet-like tree (`var/log/pods/...` with
`var/log/containers/*.log` symlinks), starts the blackhole (its own process: it parses frames, counts
events and acks every window at once, without decoding the JSON), then the shipper with compression
off. The clock runs from the first event received to the last; CPU is the shipper's user+system time
over the same span; RSS is sampled every 100 ms (peak while shipping, and once everything is read
while all files are still open). Writes benchmarks/results/shipper-<timestamp>.json.
Targets: >= 200,000 lines/s; RSS <= 64 MiB with 1,000 files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import psutil
import yaml

GIB = 2**30
MIB = 2**20
LINE_BYTES = 256
RESULTS = Path(__file__).resolve().parent / "results"

# -- the blackhole (runs in its own process) ------------------------------------------------------


class _Sink(asyncio.Protocol):
    """Lumberjack v2 reader that acks each window as soon as its last event arrives."""

    counter = [0, 0.0, 0.0]  # events, first, last (wall clock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = b""
        self.window = 0

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos = self._frames(buf, 0, True)
        self.buf = buf[pos:]

    def _frames(self, buf: bytes, pos: int, top: bool) -> int:
        n = len(buf)
        count = 0
        unpack = struct.unpack_from
        while n - pos >= 2:
            kind = buf[pos + 1]
            if kind == 0x4A:  # J: seq, length, payload
                if n - pos < 10:
                    break
                seq, size = unpack(">II", buf, pos + 2)
                if n - pos < 10 + size:
                    break
                pos += 10 + size
                count += 1
                if seq == self.window:
                    self.t.write(b"2A" + struct.pack(">I", seq))  # type: ignore[attr-defined]
            elif kind == 0x57:  # W: window size
                if n - pos < 6:
                    break
                self.window = unpack(">I", buf, pos + 2)[0]
                pos += 6
            elif kind == 0x43:  # C: compressed frames
                if n - pos < 6:
                    break
                size = unpack(">I", buf, pos + 2)[0]
                if n - pos < 6 + size:
                    break
                inner = zlib.decompress(buf[pos + 6 : pos + 6 + size])
                self._frames(inner, 0, False)
                pos += 6 + size
            else:
                raise ValueError(f"unexpected frame type {kind}")
        if count:
            c = self.counter
            now = time.time()
            if not c[0]:
                c[1] = now
            c[0] += count
            c[2] = now
        return pos


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Sink, "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    while not stop.is_set():
        print(orjson.dumps(_Sink.counter).decode(), flush=True)
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except TimeoutError:
            pass
    server.close()


class Blackhole:
    def __init__(self) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.shipper_blackhole", "--sink", str(self.port)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"ready"
        self.events, self.first, self.last = 0, 0.0, 0.0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events, self.first, self.last = orjson.loads(line)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


# -- the workload -------------------------------------------------------------------------------


def prewrite(root: Path, files: int, lines: int) -> int:
    """`lines` Docker lines of exactly LINE_BYTES bytes over `files` container logs; returns bytes."""
    prefix = b'{"log":"'
    suffix = b'\\n","stream":"stdout","time":"2026-11-26T21:37:22.504806000Z"}\n'
    body = LINE_BYTES - len(prefix) - len(suffix)
    per_file = lines // files
    total = 0
    for i in range(files):
        pod_dir = root / f"var/log/pods/bench_pod-{i}_{i:08x}-0000-0000-0000-000000000000/app"
        pod_dir.mkdir(parents=True, exist_ok=True)
        links = root / "var/log/containers"
        links.mkdir(parents=True, exist_ok=True)
        (links / f"pod-{i}_bench_app-{i:064x}.log").symlink_to(pod_dir / "0.log")
        chunk = bytearray()
        for n in range(per_file):
            text = f"pod {i} line {n} ".encode()
            chunk += prefix + text + b"x" * (body - len(text)) + suffix
        (pod_dir / "0.log").write_bytes(chunk)
        total += len(chunk)
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_case(
    files: int,
    lines: int,
    work: Path,
    window_size: int = 2048,
    pending: int = 2,
    read_buffer: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`extra`: more keys of the `shipper:` section (benchmarks/kubernetes_metadata.py adds `kubernetes`)."""
    root = work / f"files-{files}"
    size = prewrite(root, files, lines)
    lines = (lines // files) * files
    sink = Blackhole()
    cfg: dict[str, Any] = {
        "shipper": {
            "name": "bench-node",
            "inputs": [{"type": "containers", "paths": [str(root / "var/log/containers/*.log")]}],
            "registry": {"path": str(root / "registry.json")},
            "output": {
                "hosts": [f"127.0.0.1:{sink.port}"],
                "compression_level": 0,
                "window_size": window_size,
                "max_pending_windows": pending,
            },
            "http": {"host": "127.0.0.1", "port": _free_port()},
        }
    }
    if read_buffer is not None:
        cfg["shipper"]["read_buffer_bytes"] = read_buffer
    cfg["shipper"].update(extra or {})
    cfg_path = root / "shipper.yml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    log = open(root / "shipper.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("logship")), "shipper", "-c", str(cfg_path)], stdout=log, stderr=log
    )
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, float, int]] = []  # wall, cpu, rss
    cpu_at_first = None
    try:
        deadline = time.time() + max(120.0, size / MIB)
        while sink.events < lines:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"only {sink.events} of {lines} lines arrived; see {root / 'shipper.log'}")
            t = ps.cpu_times()
            samples.append((time.time(), t.user + t.system, ps.memory_info().rss))
            if cpu_at_first is None and sink.events:
                cpu_at_first = samples[-1][1]
            time.sleep(0.1)
        t = ps.cpu_times()
        cpu_end = t.user + t.system
        time.sleep(1.0)  # everything read, every file still open
        rss_idle = ps.memory_info().rss
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        sink.stop()
        log.close()
    seconds = max(sink.last - sink.first, 1e-6)
    cpu = cpu_end - (cpu_at_first or 0.0)
    row = {
        "files": files,
        "window_size": window_size,
        "max_pending_windows": pending,
        "read_buffer_bytes": read_buffer,
        "lines": lines,
        "bytes": size,
        "seconds": round(seconds, 3),
        "lines_per_s": round(lines / seconds),
        "mib_per_s": round(size / MIB / seconds, 1),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_gib": round(cpu / (size / GIB), 1),
        "rss_peak_mib": round(max(s[2] for s in samples) / MIB, 1),
        "rss_idle_mib": round(rss_idle / MIB, 1),
    }
    shutil.rmtree(root, ignore_errors=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--files", default="1,100,1000", help="comma-separated file counts")
    p.add_argument("--lines", type=int, default=1_000_000, help="lines per file set")
    p.add_argument("--window-size", type=int, default=2048, help="output.window_size (default as shipped)")
    p.add_argument("--max-pending-windows", type=int, default=4, help="output.max_pending_windows (default as shipped)")
    p.add_argument("--read-buffer-bytes", type=int, help="read_buffer_bytes (default: the shipper's default)")
    p.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # internal: run the blackhole on PORT
    args = p.parse_args(argv)
    if args.sink:
        import uvloop

        uvloop.run(_serve(args.sink))
        return 0
    rows = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="shipper-bench-") as tmp:
        for files in [int(f) for f in args.files.split(",")]:
            print(f"files={files}: writing {args.lines:,} lines of {LINE_BYTES} B ...", flush=True)
            row = run_case(
                files, args.lines, Path(tmp), args.window_size, args.max_pending_windows, args.read_buffer_bytes
            )
            rows.append(row)
            print(
                f"files={files}: {row['lines_per_s']:,} lines/s, {row['mib_per_s']} MiB/s, "
                f"{row['cpu_s_per_gib']} CPU s/GiB, RSS peak {row['rss_peak_mib']} MiB, "
                f"idle {row['rss_idle_mib']} MiB (shipper used {row['cpu_s'] / row['seconds']:.2f} CPU)",
                flush=True,
            )
    result = {
        "benchmark": "shipper -> blackhole lumberjack server (loopback)",
        "command": ".venv/bin/python -m benchmarks.shipper_blackhole " + " ".join(argv or sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conditions": {
            "line_bytes": LINE_BYTES,
            "format": "docker json-file",
            "compression_level": 0,
            "window_size": args.window_size,
            "max_pending_windows": args.max_pending_windows,
            "cpus": os.cpu_count(),
            "loadavg_at_start": load_start,
            "loadavg_at_end": os.getloadavg(),
            "python": sys.version.split()[0],
        },
        "targets": {"lines_per_s": 200_000, "rss_mib_at_1000_files": 64},
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"shipper-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
