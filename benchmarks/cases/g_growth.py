"""Case g: how cost grows with files, line size and connections (only with `--cases g`).

Shipper (case a's measurement: files -> agent -> blackhole, each agent pinned to one core, compression
off, Docker json-file lines), logship and Fluent Bit on the same sets:
- files: `g_file_counts` files of `line_bytes`-byte lines (on disk, as case a), `g_mib` MiB per set,
  so more files means fewer bytes per file: what grows is the cost of holding and polling files;
- line size: one file of lines of `g_line_sizes` bytes as the application wrote them (message and
  newline; Docker's JSON adds 71 bytes on disk), `g_mib` MiB per set.
Every set holds at least `g_min_windows` windows of lines: logship's clock starts at the first event
the blackhole receives, after the shipper has read its first window, so a set of a few windows of
16 KiB lines would leave most of the reading off the clock (sets of large lines are larger than `g_mib`).
CPU seconds per GiB (of file bytes read) and peak RSS per point, the median of `g_repeats` runs.

logship's `max_open_files` (default 4,096) is raised to the file count plus headroom, as an operator
with that many files would set it: under the cap, files beyond it wait until another one closes
(`close_inactive`, 5 minutes), which would time the cap and not the reading. The open-files limit
(RLIMIT_NOFILE) of this runner, which the file writer and the agents inherit, is raised to the largest
file count plus 1,024 for the case (`procs.open_files_limit`; the shipper raises its own soft limit to
the hard one as well, Fluent Bit does not).

Aggregator (case b's measurement: `benchmarks.ljload` senders -> aggregator with its blackhole sink):
events/s and events per CPU second against `g_connections` connections, `g_events` events per point
in windows of `g_window` events (the same at every point, so only the connection count changes;
`max_pending_windows` in flight per connection), senders of at most `g_connections_per_sender`
connections each. The aggregator is pinned to the agents' core, the senders to the other cores.
"""

from __future__ import annotations

import math
import shutil
from typing import Any

from benchmarks.cases.a_shipper import file_set, run_median
from benchmarks.cases.b_aggregator import Load, with_sink
from benchmarks.cases.common import Context, shipping_settings
from benchmarks.procs import AGENT_CPU, open_files_limit, other_cpus
from benchmarks.workload import DOCKER_OVERHEAD, FileSet, message_bytes
from logship.loggen.formats import DOCKER

# logship's default `max_open_files`; more files than this get the cap raised (see above)
SHIPPER_MAX_OPEN_FILES = 4096


def disk_line_bytes(app_line_bytes: int) -> int:
    """Bytes on disk of a Docker json-file line whose message (without its newline) is
    `app_line_bytes - 1`: the message, its escaped newline and the JSON around it."""
    return app_line_bytes - 1 + DOCKER_OVERHEAD


def _agents(ctx: Context) -> list[str]:
    return ["logship"] + (["fluentbit"] if ctx.peers.fluentbit else [])


def _measure_set(ctx: Context, fs: FileSet, extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Every agent on `fs`, one after the other (they meet the same machine)."""
    overrides = {"max_open_files": max(SHIPPER_MAX_OPEN_FILES, fs.files + 64)}
    rows = []
    for agent in _agents(ctx):
        compression = 0 if agent == "logship" else None
        row = run_median(ctx, fs, compression, agent, ctx.profile.g_repeats, "g", overrides)
        rows.append({**row, **extra})
    return rows


def _written(ctx: Context, files: int, line_bytes: int) -> tuple[FileSet, bool]:
    """The set, and whether this case wrote it (then it removes it after use: sets of 128 MiB add up)."""
    p = ctx.profile
    key = (files, DOCKER, line_bytes, p.g_mib)
    existed = key in ctx.file_sets
    min_lines = p.g_min_windows * p.window_size
    return file_set(ctx, files, DOCKER, line_bytes, p.g_mib, case="g", min_lines=min_lines), not existed


def _drop(ctx: Context, fs: FileSet) -> None:
    for key in [k for k, v in ctx.file_sets.items() if v is fs]:
        del ctx.file_sets[key]
    shutil.rmtree(fs.root, ignore_errors=True)


def files_sweep(ctx: Context) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for files in ctx.profile.g_file_counts:
        fs, mine = _written(ctx, files, ctx.profile.line_bytes)
        try:
            rows += _measure_set(ctx, fs, {"line_bytes_on_disk": ctx.profile.line_bytes})
        finally:
            if mine:
                _drop(ctx, fs)
    return rows


def line_size_sweep(ctx: Context) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for size in ctx.profile.g_line_sizes:
        fs, mine = _written(ctx, 1, disk_line_bytes(size))
        try:
            rows += _measure_set(ctx, fs, {"line_bytes": size, "line_bytes_on_disk": disk_line_bytes(size)})
        finally:
            if mine:
                _drop(ctx, fs)
    return rows


def connections_sweep(ctx: Context) -> list[dict[str, Any]]:
    p = ctx.profile
    rows: list[dict[str, Any]] = []
    senders_cpu = other_cpus()
    for connections in p.g_connections:
        load = Load(
            events=p.g_events,
            connections=connections,
            window=p.g_window,
            pending=p.max_pending_windows,
            message_bytes=message_bytes(p.line_bytes),
            loaders=math.ceil(connections / max(1, p.g_connections_per_sender)),
            cpu=senders_cpu,
        )
        ctx.say("g", f"{load.events:,} events over {connections} connections ({load.loaders} sender processes, "
                f"windows of {load.window}) -> aggregator with its blackhole sink")  # fmt: skip
        try:
            r = with_sink(ctx, ctx.dir(f"g-aggregator-{connections}"), load, cpu=AGENT_CPU)
        except (RuntimeError, TimeoutError) as exc:
            ctx.say("g", f"aggregator at {connections} connections failed: {exc}")
            rows.append({"connections": connections, "error": str(exc)})
            continue
        per_cpu = r["events_per_cpu_s"] or 0
        ctx.say("g", f"{connections} connections: {r['events_per_s']:,.0f} events/s, {per_cpu:,.0f} events per "
                f"CPU s, RSS {r['aggregator_rss_peak_mib']} MiB")  # fmt: skip
        rows.append({"connections": connections, "window": load.window, **r})
    return rows


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    needed = max((*p.g_file_counts, *p.g_connections, 1)) + 1024
    with open_files_limit(needed) as (soft, hard):
        ctx.say("g", f"open-files limit for the writer and the agents: {soft} (hard {hard})")
        files = files_sweep(ctx)
        sizes = line_size_sweep(ctx)
        connections = connections_sweep(ctx)
    return {
        "title": "how cost grows: files, line size (shipper) and connections (aggregator)",
        "conditions": {
            "format": "docker json-file",
            "compression_level": 0,
            "mib_per_point": p.g_mib,
            "min_lines_per_point": p.g_min_windows * p.window_size,
            "files_sweep_line_bytes_on_disk": p.line_bytes,
            "line_size": "the line as the application wrote it (message + newline); Docker JSON adds 71 B on disk",
            "repeats": p.g_repeats,
            "pinned_to_cpu": AGENT_CPU,
            "senders_cpu": other_cpus(),
            "open_files_limit": [soft, hard],
            "logship_max_open_files": f"max({SHIPPER_MAX_OPEN_FILES}, files + 64)",
            "fluentbit": "tail (multiline.parser docker, cri; DB) -> null, Flush 1 s; clock over its input's records"
            if ctx.peers.fluentbit
            else f"not measured: {ctx.peers.fluentbit_reason}",
            "events_per_connection_point": p.g_events,
            "window_size_aggregator_sweep": p.g_window,
            "connections_per_sender": p.g_connections_per_sender,
            **{k: v for k, v in shipping_settings(p).items() if k.startswith("bulk_")},
            "max_pending_windows": p.max_pending_windows,
        },
        "agents": {
            "logship": "measured",
            "fluentbit": ctx.peers.fluentbit_version or f"not measured: {ctx.peers.fluentbit_reason}",
        },
        "files": files,
        "line_sizes": sizes,
        "connections": connections,
    }
