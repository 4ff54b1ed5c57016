"""The generator: writes events at a rate into an EKS-node-shaped tree and records a manifest.

Event `i` is scheduled at `i / rate` seconds after start and time-stamped `start_time + i / rate *
clock_speed`, so a fixed seed and start time give byte-identical files whatever the machine's speed.
The manifest (JSON) says, per source file, how many logical events were written, which index family
and daily indices they belong in and which Kubernetes fields they must carry: tests and benchmarks
compare it with what reached OpenSearch.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from logship.loggen import content, formats
from logship.loggen.layout import ROTATIONS, AppLogDir, ContainerFile

MANIFEST_NAME = "loggen-manifest.json"
RUNTIMES = {formats.DOCKER: "docker", formats.CRI: "cri"}  # container.runtime as the shipper sets it


@dataclass
class GenConfig:
    root: Path
    rate: float = 1000.0  # events per second; 0 = as fast as possible
    duration: float | None = None  # seconds; None = until `lines` or stopped
    lines: int | None = None  # live events to write (app backlog days not included)
    pods: int = 4
    containers_per_pod: int = 1
    format: str = "mixed"  # docker | cri | mixed (alternating per pod)
    line_min: int = 80
    line_max: int = 240
    long_ratio: float = 0.0  # share of container lines longer than the runtime split size
    long_bytes: int = 40_000
    split_bytes: int = formats.RUNTIME_SPLIT_BYTES
    stderr_ratio: float = 0.2
    app_share: float = 0.2  # share of events that go to the app log; 0 = no app log
    app_days: int = 1  # >1: also write earlier days' files up front (app_backlog events each)
    app_backlog: int = 50
    stack_ratio: float = 0.1  # share of app events with a Java stack trace
    rotate: str = "none"
    rotate_bytes: int = 256 * 1024
    rotate_keep: int = 5
    rotate_quiet: float = 0.0  # pause writing this long before each rotation (copytruncate safety)
    rotate_every: float = 0.0  # also rotate each container file this often (seconds of run time); 0 = by size only
    app_copytruncate_every: float = 0.0  # logrotate copytruncate of the current app log this often; 0 = never
    seed: int = 1
    run_id: str | None = None
    start_time: datetime | None = None  # None = now
    clock_speed: float = 1.0  # simulated seconds per scheduled second
    manifest: Path | None = None  # default <root>/loggen-manifest.json
    tick: float = 0.05

    def validate(self) -> None:
        problems = []
        if self.format not in (*formats.FORMATS, "mixed"):
            problems.append(f"format must be docker, cri or mixed, not {self.format!r}")
        if self.rotate not in ROTATIONS:
            problems.append(f"rotate must be one of {', '.join(ROTATIONS)}, not {self.rotate!r}")
        if self.rate < 0 or self.pods < 0 or self.containers_per_pod < 1:
            problems.append("rate and pods must be >= 0 and containers per pod >= 1")
        if not 1 <= self.line_min <= self.line_max:
            problems.append("line sizes must satisfy 1 <= min <= max")
        if self.pods == 0 and self.app_share <= 0:
            problems.append("nothing to write: no pods and no app log")
        if self.rate == 0 and self.lines is None and self.duration is None:
            problems.append("an unlimited rate needs a number of lines or a duration")
        if self.rotate_every < 0 or self.app_copytruncate_every < 0:
            problems.append("rotation intervals must be >= 0")
        if self.rotate_every > 0 and self.rotate == "none":
            problems.append("rotate_every needs a rotation style")
        if self.rotate_keep < 2:
            problems.append("rotate keep must be >= 2")
        if self.app_days < 1:
            problems.append("app days must be >= 1")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class Stats:
    events: int = 0
    bytes: int = 0
    rotations: int = 0
    elapsed: float = 0.0
    per_family: Counter[str] = field(default_factory=Counter)


@dataclass
class _ContainerSource:
    file: ContainerFile
    events: int = 0
    records: int = 0
    split_events: int = 0
    streams: Counter[str] = field(default_factory=Counter)
    dates: Counter[str] = field(default_factory=Counter)


def _index_date(ts_ns: int) -> str:
    return formats.utc_date(ts_ns)


def _to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


class Generator:
    def __init__(self, config: GenConfig) -> None:
        config.validate()
        self.config = config
        self.rng = random.Random(config.seed)
        self.run_id = config.run_id or f"{random.Random(f'run-{config.seed}').getrandbits(32):08x}"
        start = config.start_time or datetime.now(UTC)
        self.start_ns = _to_ns(start)
        self.filler = content.Filler(self.rng)
        self.stats = Stats()
        root = Path(config.root)
        self.containers: list[_ContainerSource] = []
        for p in range(config.pods):
            pod = content.pod_identity(self.rng, p, config.containers_per_pod)
            fmt = config.format if config.format != "mixed" else formats.FORMATS[p % 2]
            for c in range(config.containers_per_pod):
                self.containers.append(_ContainerSource(ContainerFile(root, f"p{p}c{c}", fmt, pod, c)))
        self.app = AppLogDir(root) if config.app_share > 0 else None
        self.app_events = 0
        self.app_multiline = 0
        self.app_dates: Counter[str] = Counter()
        self._paused = 0.0  # seconds spent in rotation pauses, kept out of the schedule
        self._next_timed_rotation = config.rotate_every
        self._next_app_copytruncate = config.app_copytruncate_every

    # -- writing one event -------------------------------------------------------------------

    def _size(self) -> int:
        return self.rng.randint(self.config.line_min, self.config.line_max)

    def _write_container(self, src: _ContainerSource, ts_ns: int) -> None:
        cfg = self.config
        long = cfg.long_ratio > 0 and self.rng.random() < cfg.long_ratio
        size = cfg.long_bytes if long else self._size()
        stream = "stderr" if self.rng.random() < cfg.stderr_ratio else "stdout"
        msg = content.container_message(self.run_id, src.file.source_id, src.events, size, self.filler)
        data = formats.encode(src.file.format, msg, stream, ts_ns, cfg.split_bytes)
        src.file.write(data)
        records = data.count(b"\n")
        src.events += 1
        src.records += records
        src.split_events += records > 1
        src.streams[stream] += 1
        src.dates[_index_date(ts_ns)] += 1
        self.stats.bytes += len(data)
        self.stats.per_family["containers"] += 1
        if cfg.rotate != "none" and src.file.size >= cfg.rotate_bytes:
            self._rotate(src, ts_ns)

    def _write_app(self, ts_ns: int) -> None:
        assert self.app is not None
        cfg = self.config
        frames = self.rng.randint(3, 25) if self.rng.random() < cfg.stack_ratio else 0
        lines = content.app_event_lines(
            self.run_id, self.app_events, formats.app_timestamp(ts_ns), self._size(), frames, self.rng, self.filler
        )
        data = ("\n".join(lines) + "\n").encode("utf-8")
        self.app.write(formats.utc_date(ts_ns, "%Y-%m-%d"), data)
        self.app_events += 1
        self.app_multiline += frames > 0
        self.app_dates[_index_date(ts_ns)] += 1
        self.stats.bytes += len(data)
        self.stats.per_family["app"] += 1

    def _write_event(self, i: int) -> None:
        cfg = self.config
        step_ns = 1e9 / cfg.rate if cfg.rate > 0 else 1e6
        ts_ns = self.start_ns + int(i * step_ns * cfg.clock_speed)
        if self.app is not None and (not self.containers or self.rng.random() < cfg.app_share):
            self._write_app(ts_ns)
        else:
            self._write_container(self.containers[self.rng.randrange(len(self.containers))], ts_ns)
        self.stats.events += 1

    def _write_backlog(self) -> None:
        """Earlier days' app log files, present before the shipper starts (`app_days` > 1)."""
        if self.app is None:
            return
        day0 = datetime.fromtimestamp(self.start_ns / 1e9, tz=UTC).replace(hour=12, minute=0, second=0, microsecond=0)
        for back in range(self.config.app_days - 1, 0, -1):
            noon = _to_ns(day0 - timedelta(days=back))
            for k in range(self.config.app_backlog):
                self._write_app(noon + k * 1_000_000_000)
                self.stats.events += 1

    # -- the loop ------------------------------------------------------------------------------

    def _flush(self) -> None:
        for src in self.containers:
            src.file.flush()
        if self.app is not None:
            self.app.flush()

    def _rotate(self, src: _ContainerSource, ts_ns: int) -> None:
        """Rotate a file that grew past the limit, after an optional quiet pause (see `rotate_quiet`)."""
        if self.config.rotate_quiet > 0:
            self._flush()
            time.sleep(self.config.rotate_quiet)
            self._paused += self.config.rotate_quiet
        src.file.rotate(self.config.rotate, ts_ns, self.config.rotate_keep)
        self.stats.rotations += 1

    def _timed_rotations(self, elapsed: float, written: int) -> None:
        """Rotation by the clock, as kubelet and logrotate do it on a schedule, not only by size."""
        cfg = self.config
        step_ns = 1e9 / cfg.rate if cfg.rate > 0 else 1e6
        ts_ns = self.start_ns + int(written * step_ns * cfg.clock_speed)
        if cfg.rotate_every > 0 and elapsed >= self._next_timed_rotation:
            self._next_timed_rotation = elapsed + cfg.rotate_every
            for src in self.containers:
                if src.file.size > 0:
                    self._rotate(src, ts_ns)
        if self.app is not None and cfg.app_copytruncate_every > 0 and elapsed >= self._next_app_copytruncate:
            self._next_app_copytruncate = elapsed + cfg.app_copytruncate_every
            if self.app.copytruncate(cfg.rotate_keep):
                self.stats.rotations += 1

    def run(
        self,
        stop: threading.Event | None = None,
        progress: Callable[[Stats], None] | None = None,
    ) -> dict[str, Any]:
        """Write until the duration, the line count or `stop`; then close files and write the manifest."""
        cfg = self.config
        started_at = datetime.now(UTC)
        t0 = time.monotonic()
        written = 0
        try:
            self._write_backlog()
            self._flush()
            while not (stop is not None and stop.is_set()):
                elapsed = time.monotonic() - t0 - self._paused
                if cfg.duration is not None and elapsed >= cfg.duration:
                    break
                target = written + 2000 if cfg.rate == 0 else int(elapsed * cfg.rate) + 1
                if cfg.lines is not None:
                    target = min(target, cfg.lines)
                while written < target:
                    self._write_event(written)
                    written += 1
                self._flush()
                self._timed_rotations(elapsed, written)
                self.stats.elapsed = time.monotonic() - t0
                if progress is not None:
                    progress(self.stats)
                if cfg.lines is not None and written >= cfg.lines:
                    break
                if cfg.rate > 0:
                    time.sleep(cfg.tick)
        finally:
            self._flush()
            for src in self.containers:
                src.file.close()
            if self.app is not None:
                self.app.close()
        self.stats.elapsed = time.monotonic() - t0
        manifest = self.manifest(started_at)
        self._write_manifest(manifest)
        return manifest

    # -- manifest ------------------------------------------------------------------------------

    def manifest(self, started_at: datetime | None = None) -> dict[str, Any]:
        cfg = self.config
        sources: list[dict[str, Any]] = []
        families: dict[str, dict[str, Any]] = {}

        def add_family(name: str, events: int, dates: Counter[str]) -> None:
            fam = families.setdefault(name, {"events": 0, "dates": Counter()})
            fam["events"] += events
            fam["dates"].update(dates)

        for src in self.containers:
            f = src.file
            sources.append(
                {
                    "id": f.source_id,
                    "kind": "container",
                    "format": f.format,
                    "path": str(f.link),
                    "target": str(f.path),
                    "events": src.events,
                    "records": src.records,
                    "split_events": src.split_events,
                    "streams": dict(src.streams),
                    "rotations": f.rotations,
                    "files": f.files(),
                    "family": "containers",
                    "tags": ["containers"],
                    "dates": dict(src.dates),
                    "kubernetes": {
                        "pod": {"name": f.pod.pod, "uid": f.pod.uid},
                        "namespace": f.pod.namespace,
                        "container": {"name": f.container_name},
                    },
                    "container": {"id": f.container_id, "runtime": RUNTIMES[f.format]},
                }
            )
            add_family("containers", src.events, src.dates)
        if self.app is not None:
            sources.append(
                {
                    "id": "app",
                    "kind": "app",
                    "path": str(self.app.dir),
                    "events": self.app_events,
                    "multiline_events": self.app_multiline,
                    "files": dict(sorted(self.app.events_per_file.items())),
                    "family": "app",
                    "tags": ["app"],
                    "dates": dict(self.app_dates),
                }
            )
            add_family("app", self.app_events, self.app_dates)
        config = {k: (str(v) if isinstance(v, Path | datetime) else v) for k, v in asdict(cfg).items()}
        return {
            "version": 1,
            "run": self.run_id,
            "marker_regex": content.MARKER_RE.pattern,
            "root": str(cfg.root),
            "seed": cfg.seed,
            "start_time": formats.rfc3339_nano(self.start_ns),
            "started_at": started_at.isoformat() if started_at else None,
            "elapsed_s": round(self.stats.elapsed, 3),
            "events": self.stats.events,
            "bytes": self.stats.bytes,
            "rotations": self.stats.rotations,
            "families": {
                k: {"events": v["events"], "dates": dict(sorted(v["dates"].items()))} for k, v in families.items()
            },
            "sources": sources,
            "config": config,
        }

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        path = Path(self.config.manifest or Path(self.config.root) / MANIFEST_NAME)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)
