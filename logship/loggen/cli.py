"""`logship loggen` / `python -m logship.loggen`: write synthetic EKS node logs from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from logship.loggen.generator import MANIFEST_NAME, GenConfig, Generator, Stats
from logship.loggen.layout import ROTATIONS


def _size_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BYTES or MIN-MAX, got {text!r}") from None
    return a, b


def _when(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time such as 2026-01-31T23:59:50Z, got {text!r}"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="logship loggen",
        description="Write synthetic logs into a tree shaped like an EKS node: /var/log/pods, the "
        "/var/log/containers symlinks (Docker json-file and CRI formats) and /app/logs/log-YYYY-MM-DD.log "
        "(Java-style, with stack traces). Every event carries a marker 'run=R src=S seq=N'; a JSON manifest "
        "records what was written.",
    )
    p.add_argument("-o", "--root", required=True, type=Path, help="output root directory (created)")
    p.add_argument("-r", "--rate", type=float, default=1000.0, help="events per second; 0 = as fast as possible")
    p.add_argument("-d", "--duration", type=float, help="stop after this many seconds")
    p.add_argument("-n", "--lines", type=int, help="stop after this many events")
    p.add_argument("--pods", type=int, default=4, help="number of pods (default 4)")
    p.add_argument("--containers-per-pod", type=int, default=1)
    p.add_argument(
        "--format",
        choices=["docker", "cri", "mixed"],
        default="mixed",
        help="container log format; mixed alternates per pod (default)",
    )
    p.add_argument(
        "--line-bytes",
        type=_size_range,
        default=(80, 240),
        metavar="MIN-MAX",
        help="message size in bytes, fixed or a range (default 80-240)",
    )
    p.add_argument(
        "--long-ratio",
        type=float,
        default=0.0,
        help="share of container lines longer than --split-bytes (Docker splits / CRI partials)",
    )
    p.add_argument("--long-bytes", type=int, default=40_000, help="size of those long lines (default 40000)")
    p.add_argument("--split-bytes", type=int, default=16 * 1024, help="runtime split size (default 16 KiB)")
    p.add_argument("--stderr-ratio", type=float, default=0.2)
    p.add_argument("--app-share", type=float, default=0.2, help="share of events in the app log; 0 = no app log")
    p.add_argument("--app-days", type=int, default=1, help="2+: also write the previous days' app log files up front")
    p.add_argument("--app-backlog", type=int, default=50, help="events in each earlier day's app log")
    p.add_argument("--stack-ratio", type=float, default=0.1, help="share of app events with a Java stack trace")
    p.add_argument("--rotate", choices=ROTATIONS, default="none", help="rotation of container logs")
    p.add_argument("--rotate-bytes", type=int, default=256 * 1024, help="rotate a file past this size")
    p.add_argument("--rotate-keep", type=int, default=5, help="rotated files kept (kubelet: files in total)")
    p.add_argument(
        "--rotate-quiet",
        type=float,
        default=0.0,
        help="pause writing this many seconds before rotating (lets a tailer catch up)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed; with --start-time the output is identical")
    p.add_argument("--run-id", help="marker run id (default: derived from the seed)")
    p.add_argument("--start-time", type=_when, help="fake clock start, e.g. 2026-01-31T23:59:50Z (default now)")
    p.add_argument("--clock-speed", type=float, default=1.0, help="simulated seconds per second of schedule")
    p.add_argument("--manifest", type=Path, help=f"manifest path (default ROOT/{MANIFEST_NAME})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


class _Progress:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, stats: Stats) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        self.print(stats, final=False)

    def print(self, stats: Stats, final: bool) -> None:
        rate = stats.events / stats.elapsed if stats.elapsed > 0 else 0.0
        fams = " ".join(f"{k}={v}" for k, v in sorted(stats.per_family.items()))
        text = (
            f"loggen: {stats.events} events ({fams}), {stats.bytes / 2**20:.1f} MiB, {rate:,.0f}/s, "
            f"{stats.rotations} rotations, {stats.elapsed:.1f}s"
        )
        if self.tty:
            sys.stderr.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rate > 0 and args.duration is None and args.lines is None:
        print("loggen: no --duration or --lines: writing until interrupted (Ctrl-C)", file=sys.stderr)
    config = GenConfig(
        root=args.root, rate=args.rate, duration=args.duration, lines=args.lines, pods=args.pods,
        containers_per_pod=args.containers_per_pod, format=args.format,
        line_min=args.line_bytes[0], line_max=args.line_bytes[1], long_ratio=args.long_ratio,
        long_bytes=args.long_bytes, split_bytes=args.split_bytes, stderr_ratio=args.stderr_ratio,
        app_share=args.app_share, app_days=args.app_days, app_backlog=args.app_backlog,
        stack_ratio=args.stack_ratio, rotate=args.rotate, rotate_bytes=args.rotate_bytes,
        rotate_keep=args.rotate_keep, rotate_quiet=args.rotate_quiet, seed=args.seed, run_id=args.run_id,
        start_time=args.start_time, clock_speed=args.clock_speed, manifest=args.manifest,
    )  # fmt: skip
    try:
        args.root.mkdir(parents=True, exist_ok=True)
        gen = Generator(config)
    except (ValueError, OSError) as exc:
        print(f"loggen: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    progress = None if args.quiet else _Progress(1.0)
    try:
        manifest = gen.run(stop=stop, progress=progress)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if progress is not None:
        progress.print(gen.stats, final=True)
    where = config.manifest or args.root / MANIFEST_NAME
    print(f"loggen: wrote {manifest['events']} events under {args.root}; manifest {where}", file=sys.stderr)
    return 0
