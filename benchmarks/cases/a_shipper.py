"""Case a: files -> one shipper process -> blackhole protocol server.

The blackhole is benchmarks.shipper_blackhole's frame counter in its own process: it acks each window
without decoding the JSON, so the receiver is never the limit.

The clock runs from the first event the blackhole receives to the last (start-up left out); CPU is
the shipper's user+system seconds over the same span; RSS is the peak while it ships. Filebeat (its
Logstash output) reads the same files into the same blackhole when it is available; Fluent Bit reads
them into its `null` output (its clock: first -> last record its input read, from its metrics), and,
on the 1-file sets, also ships them with its `opensearch` output, plain and gzip, into a blackhole
`_bulk` server (agent `fluentbit-bulk`, clocked by that server as logship is by its blackhole): the
`null` output never encodes or compresses a record, which logship's figures include.
Every agent under test is pinned to one core (`taskset -c`, procs.AGENT_CPU); Docker json-file sets
at every file count, CRI sets at `a_cri_file_counts`; each measurement is the median of `a_repeats`.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.cases.common import Context, Throttle, mib, start_shipper
from benchmarks.peers import filebeat, fluentbit
from benchmarks.procs import AGENT_CPU, Measured, free_port
from benchmarks.sinks import start_sink
from benchmarks.workload import FileSet, prewrite
from logship.loggen.formats import CRI, DOCKER

GIB = 2**30


def file_set(
    ctx: Context,
    files: int,
    fmt: str = DOCKER,
    line_bytes: int | None = None,
    mib: int | None = None,
    case: str = "a",
    min_lines: int = 0,
) -> FileSet:
    """The pre-written set of `mib` MiB of `line_bytes`-byte lines (the profile's `line_bytes` and
    `a_mib` by default), at least `min_lines` lines, in `files` files, generated once per run."""
    line_bytes = line_bytes or ctx.profile.line_bytes
    mib = mib or ctx.profile.a_mib
    key = (files, fmt, line_bytes, mib)
    fs = ctx.file_sets.get(key)
    if fs is None:
        lines = max(files, min_lines, mib * 2**20 // line_bytes)
        ctx.say(case, f"writing {lines:,} {fmt} lines of {line_bytes:,} B into {files:,} files")
        name = f"files-{files}-{fmt}" if key[2:] == (ctx.profile.line_bytes, ctx.profile.a_mib) else (
            f"files-{files}-{fmt}-{line_bytes}b-{mib}m")  # fmt: skip
        fs = prewrite(ctx.dir(name), files, lines, line_bytes, fmt=fmt)
        ctx.file_sets[key] = fs
    return fs


def measure(
    ctx: Context, label: str, proc: Measured, sink: Any, fs: FileSet, timeout: float, lines: int, case: str = "a"
) -> dict[str, Any]:
    """Wait until the sink has `lines` lines; figures over first -> last event received."""
    progress = Throttle(ctx, case)
    # Fluent Bit with thousands of files takes long before its first record (14-16 s for 5,000
    # small files in a try here, with or without its offsets database; over a minute on a busy core)
    first_timeout = 60.0 + 0.05 * fs.files
    try:
        if not sink.wait_events(1, first_timeout):
            raise RuntimeError(f"{label}: no event reached the blackhole in {first_timeout:.0f} s\n{proc.log_tail()}")
        ok = sink.wait_events(lines, timeout, lambda n: progress(f"{label}: {n:,}/{lines:,} lines"))
        if not ok:
            raise RuntimeError(f"{label}: only {sink.events:,} of {lines:,} lines in {timeout:.0f} s")
        if not proc.alive():
            raise RuntimeError(f"{label} exited early: {proc.log_tail()}")
        time.sleep(1.5)  # everything read and acked, every file still open: the resting footprint
        settled = proc.samples[-1].rss if proc.samples else 0
    finally:
        proc.stop()
    # the sink's counters are sampled: use what it had received at its last report
    got, first, last = sink.events, sink.first, sink.last
    seconds = max(last - first, 1e-6)
    cpu = proc.cpu_over(first, last)
    nbytes = fs.bytes * got / fs.lines
    return {
        "lines_timed": got,
        "seconds": round(seconds, 3),
        "lines_per_s": got / seconds,
        "mib_per_s": nbytes / 2**20 / seconds,
        "cpu_s": round(cpu, 3),
        "cpu_s_per_gib": cpu / (nbytes / GIB),
        "cpu_utilisation": cpu / seconds,
        # share of the run it was ready to run but another process had the core (shared machine)
        "runqueue_wait_share": proc.wait_over(first, last) / seconds,
        # what one fully available core would do at this CPU cost (the cores here are shared)
        "mib_per_cpu_s": nbytes / 2**20 / cpu if cpu > 0 else None,
        "rss_peak_mib": mib(proc.peak_rss()),
        "rss_settled_mib": mib(settled),
        "received": sink.events,
    }


MEDIAN_KEYS = ("lines_per_s", "mib_per_s", "cpu_s_per_gib", "mib_per_cpu_s", "rss_peak_mib", "rss_settled_mib")


def run_one(
    ctx: Context,
    fs: FileSet,
    compression: int | None,
    agent: str = "logship",
    repeat: int = 0,
    case: str = "a",
    shipper_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One measurement of `agent` reading `fs` (compression None: Fluent Bit into `null`, which sends
    nothing; `fluentbit-bulk`: 0 plain, else gzip at fluentbit.GZIP_LEVEL).
    Each repeat has a directory (registry, data) of its own, so it reads the files from the start.
    `shipper_overrides`: keys of logship's `shipper:` section changed for this measurement."""
    work = ctx.dir(f"{case}-{agent}-{fs.root.name}-z{compression}-{repeat}")
    label = f"{agent} {fs.fmt} files={fs.files} compression={compression}"
    if case != "a":
        label += f" lines of {fs.avg_line_bytes:,.0f} B"
    # the peer, far slower, is timed over the first `a_peer_lines` lines only (full mode)
    lines = fs.lines if agent not in filebeat.AGENTS else min(fs.lines, ctx.profile.a_peer_lines)
    timeout = max(120.0, lines * fs.avg_line_bytes / 2**20 * 4)  # 0.25 MiB/s is broken, not slow
    if agent == "fluentbit":
        started = time.time()
        proc, http_port = fluentbit.start(ctx, fs.glob, work, cpu=AGENT_CPU)
        counter = fluentbit.RecordCounter(http_port, started)
        try:
            result = measure(ctx, label, proc, counter, fs, timeout, lines, case)
        finally:
            counter.stop()
        # the clock ran from the process start: Fluent Bit read before its metrics first answered
        result["clock_from_process_start"] = counter.from_start
    else:
        port = free_port()
        # Fluent Bit ships over HTTP `_bulk`; logship and Filebeat over Lumberjack to the frame counter
        sink = start_sink("opensearch" if agent == "fluentbit-bulk" else "frames", port, work)
        try:
            if agent == "logship":
                proc = start_shipper(
                    ctx, fs.glob, port, work, compression or 0, cpu=AGENT_CPU, overrides=shipper_overrides
                )
            elif agent == "fluentbit-bulk":
                url = f"http://127.0.0.1:{port}"
                proc, _ = fluentbit.start(ctx, fs.glob, work, opensearch_url=url, cpu=AGENT_CPU, gzip=bool(compression))
            else:
                host = f"127.0.0.1:{port}"
                proc = filebeat.start(ctx, fs.glob, host, work, compression or 0, cpu=AGENT_CPU, agent=agent)
            result = measure(ctx, label, proc, sink, fs, timeout, lines, case)
        finally:
            sink.stop()
    ctx.say(case, f"{label}: {result['lines_per_s']:,.0f} lines/s, {result['mib_per_s']:.1f} MiB/s, "
            f"{result['cpu_s_per_gib']:.1f} CPU s/GiB, RSS {result['rss_peak_mib']} MiB "
            f"(after {result['rss_settled_mib']} MiB)")  # fmt: skip
    return {"agent": agent, "files": fs.files, "compression_level": compression, **fs.describe(), **result}


def run_median(
    ctx: Context,
    fs: FileSet,
    compression: int | None,
    agent: str = "logship",
    repeats: int | None = None,
    case: str = "a",
    shipper_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`repeats` runs (`a_repeats` by default); each figure of MEDIAN_KEYS is the median over them,
    every run kept in `runs`."""
    runs: list[dict[str, Any]] = []
    for repeat in range(max(1, ctx.profile.a_repeats if repeats is None else repeats)):
        try:
            runs.append(run_one(ctx, fs, compression, agent, repeat, case, shipper_overrides))
        except RuntimeError as exc:
            ctx.say(case, f"{agent} failed: {exc}")
            return {"agent": agent, "files": fs.files, "compression_level": compression, **fs.describe(),
                    "error": str(exc)}  # fmt: skip
    row = dict(sorted(runs, key=lambda r: r["cpu_s_per_gib"])[len(runs) // 2])
    for key in MEDIAN_KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            row[key] = statistics.median(values)
    row["runs"] = [{k: r[k] for k in (*MEDIAN_KEYS, "runqueue_wait_share")} for r in runs]
    return row


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    sets = [(files, DOCKER) for files in p.a_file_counts] + [(files, CRI) for files in p.a_cri_file_counts]
    rows: list[dict[str, Any]] = []
    peer_rows: list[dict[str, Any]] = []
    # each file set in turn, logship and the peers one after the other: they meet the same machine
    for files, fmt in sets:
        fs = file_set(ctx, files, fmt)
        for level in p.a_compression:
            rows.append(run_median(ctx, fs, level))
        if ctx.peers.fluentbit:
            peer_rows.append(run_median(ctx, fs, None, agent="fluentbit"))
            if files == 1:  # shipping, as logship does: its CPU with the encoding (and compression) included
                for level in (0, fluentbit.GZIP_LEVEL):
                    peer_rows.append(run_median(ctx, fs, level, agent="fluentbit-bulk"))
        for agent, binary in (("filebeat", ctx.peers.filebeat), ("filebeat9", ctx.peers.filebeat9)):
            if binary and fmt == DOCKER:
                for level in p.a_compression:
                    peer_rows.append(run_median(ctx, fs, level, agent=agent))
    return {
        "title": "shipper -> blackhole protocol server",
        "conditions": {
            "line_bytes": p.line_bytes,
            "window_size": p.window_size,
            "max_pending_windows": p.max_pending_windows,
            "mib_per_file_set": p.a_mib,
            "repeats": p.a_repeats,
            "pinned_to_cpu": AGENT_CPU,
            "clock": "first event received -> last event received by the blackhole",
            "filebeat": "max_procs 1, container input, Logstash output"
            if ctx.peers.filebeat
            else ctx.peers.filebeat_reason,
            "filebeat9": "max_procs 1, filestream input with the container parser, Logstash output"
            if ctx.peers.filebeat9
            else ctx.peers.filebeat9_reason,
            "fluentbit": "tail (multiline.parser docker, cri; DB) -> null, Flush 1 s; clock over its input's records"
            if ctx.peers.fluentbit
            else ctx.peers.fluentbit_reason,
            "fluentbit-bulk": "1-file sets: the same tail -> opensearch output into a blackhole _bulk server, "
            f"plain (z 0) and Compress gzip (z {fluentbit.GZIP_LEVEL}, its only level); clock over the documents "
            "that server received"
            if ctx.peers.fluentbit
            else ctx.peers.fluentbit_reason,
        },
        "rows": rows,
        "peers": peer_rows,
    }
