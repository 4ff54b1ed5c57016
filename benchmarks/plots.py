"""PNG figures of a results file; each carries the conditions it was measured under in its footer.

python -m benchmarks.plots benchmarks/results/<timestamp>.json   # (re)draw the figures
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import orjson
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

LOGSHIP, FILEBEAT, RSYSLOG, CEILING, FLUENTBIT = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f", "#9467bd"
FILEBEAT9, FLUENTBIT_BULK = "#d62728", "#c5b0d5"
AGENT_COLORS = {
    "logship": LOGSHIP,
    "filebeat": FILEBEAT,
    "filebeat9": FILEBEAT9,
    "rsyslog": RSYSLOG,
    "fluentbit": FLUENTBIT,
    "fluentbit-bulk": FLUENTBIT_BULK,
}


def _footer(fig: Figure, results: dict[str, Any], case: dict[str, Any]) -> None:
    m, v = results["machine"], results["versions"]
    peers = ", ".join(
        str(val) for k, val in v.items() if k in ("filebeat", "filebeat9", "fluentbit", "rsyslog") and val
    )
    cond = ", ".join(f"{k}={val}" for k, val in case.get("conditions", {}).items() if not isinstance(val, dict))
    text = (
        f"{results['mode']} run {results['started_at'][:16]}Z | {m['cpu_count']} CPUs ({m['cpu_model']}), "
        f"{m['memory_gib']} GiB, shared with other work (load {m['load_average_at_start'][0]}) | "
        f"logship {v['logship']} ({v.get('git_commit') or '?'}), Python {v['python']}, "
        f"OpenSearch {v.get('opensearch', '-')}" + (f", {peers}" if peers else "") + f"\n{cond}"
    )
    width = int(fig.get_figwidth() * 16.5)  # characters of 6.5 pt monospace per line
    wrapped = "\n".join(textwrap.fill(part, width) for part in text.split("\n"))
    fig.text(0.01, 0.01, wrapped, fontsize=6.5, va="bottom", ha="left", family="monospace")


def _new(title: str, ncols: int = 1, footer_lines: int = 5) -> tuple[Figure, Any]:
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols + 2, 5.2))
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(bottom=0.12 + 0.025 * footer_lines, top=0.86, wspace=0.35)
    return fig, axes


def plot_a(results: dict[str, Any], case: dict[str, Any], out: Path) -> Path:
    rows = [r for r in case["rows"] + case.get("peers", []) if "error" not in r]
    # grouped by file set: logship and the peers that read the same files next to each other
    rows.sort(key=lambda r: (str(r.get("format", "docker")), r["files"], r["agent"] != "logship", r["agent"]))
    labels = [
        f"{r['agent']} {str(r.get('format', 'docker')).split()[0]} {r['files']:,} files "
        f"z={'-' if r.get('compression_level') is None else r['compression_level']}"
        for r in rows
    ]
    colors = [AGENT_COLORS.get(r["agent"], FILEBEAT) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(17, 3.2 + 0.22 * len(rows)), sharey=True)
    fig.suptitle(
        "a. shipper -> blackhole (fluentbit: tail -> null; fluentbit-bulk: opensearch output -> blackhole _bulk), "
        "256-byte lines, each agent on one core",
        fontsize=11,
    )
    fig.subplots_adjust(left=0.16, bottom=0.1 + 1.2 / (3.2 + 0.22 * len(rows)), top=0.9, wspace=0.15)
    for ax, key, title, target in (
        (axes[0], "mib_per_s", "MiB/s (higher is better)", 50.0),
        (axes[1], "cpu_s_per_gib", "CPU seconds per GiB (lower is better)", None),
        (axes[2], "rss_peak_mib", "peak RSS MiB (lower is better)", 48.0),
    ):
        values = [r[key] for r in rows]
        bars = ax.barh(range(len(rows)), values, color=colors)
        ax.bar_label(bars, fmt="%.1f" if key == "cpu_s_per_gib" else "%.0f", fontsize=7)
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
        if target is not None:
            ax.axvline(target, color="red", linestyle="--", linewidth=1, label=f"target {target:g}")
            ax.legend(fontsize=7)
    return _save(fig, results, case, out / "a_shipper.png")


def plot_b(results: dict[str, Any], case: dict[str, Any], out: Path) -> Path:
    rows = [("blackhole sink", case["result"])] + (
        [("_bulk over HTTP\nto a blackhole", case["http"])] if case.get("http") else []
    )
    fig, axes = _new("b. protocol client -> aggregator -> blackhole", 2)
    names = [n for n, _ in rows]
    for ax, key, title, target, label in (
        (axes[0], "events_per_s", "events/s", 250_000, "target 250,000"),
        (axes[1], "aggregator_rss_peak_mib", "aggregator peak RSS MiB", 150, "target 150 MiB"),
    ):
        bars = ax.bar(names, [r[key] for _, r in rows], color=LOGSHIP)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.axhline(target, color="red", linestyle="--", linewidth=1, label=label)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, results, case, out / "b_aggregator.png")


def plot_c(results: dict[str, Any], case: dict[str, Any], out: Path, variant: str = "shared cores") -> Path:
    fig, axes = _new(
        f"c. files -> OpenSearch ({variant}): logship at {case['ratio_to_ceiling']:.0%} of the node's ceiling", 2
    )
    ax = axes[0]
    for row, color in (
        [(case["logship"], LOGSHIP)]
        + [(v, "#9ecae1") for v in case.get("logship_variants", [])]
        + [(p, AGENT_COLORS.get(p["agent"], RSYSLOG)) for p in case.get("peers", []) if "timeline" in p]
    ):
        t = [x for x, _ in row["timeline"]]
        n = [y for _, y in row["timeline"]]
        name = row.get("agent", "logship")
        if name in ("filebeat", "filebeat9"):
            name = f"{name} -> aggregator"
        elif "shipper_connections" in row:
            name = f"logship, {row['shipper_connections']} connections"
        ax.plot(t, n, color=color, label=name)
    ax.set_xlabel("seconds")
    ax.set_ylabel("documents searchable")
    ax.legend(fontsize=7)
    ax.set_title("documents indexed over time", fontsize=9)
    variants = case.get("logship_variants", [])
    peers = [p for p in case.get("peers", []) if "steady_docs_per_s" in p]
    names = ["ceiling\n(loader)", "logship"] + [f"logship\n{v['shipper_connections']} conns" for v in variants]
    names += [p["agent"] for p in peers]
    values = [case["ceiling"]["steady_docs_per_s"], case["logship"]["steady_docs_per_s"]]
    values += [v["steady_docs_per_s"] for v in variants] + [p["steady_docs_per_s"] for p in peers]
    colors = [CEILING] + [LOGSHIP] * (1 + len(variants))
    colors += [AGENT_COLORS.get(p["agent"], RSYSLOG) for p in peers]
    bars = axes[1].bar(names, values, color=colors)
    axes[1].bar_label(bars, fmt="%.0f", fontsize=8)
    axes[1].axhline(0.95 * values[0], color="red", linestyle="--", linewidth=1, label="target: 95% of ceiling")
    axes[1].set_title("steady docs/s", fontsize=9)
    axes[1].legend(fontsize=7)
    axes[1].tick_params(axis="x", labelsize=7)
    name = "c_pipeline.png" if variant == "shared cores" else "c_pipeline_fair.png"
    return _save(fig, results, case, out / name)


def plot_c_fair(results: dict[str, Any], case: dict[str, Any], out: Path) -> Path | None:
    fair = case.get("fair")
    if not fair or "logship" not in fair:
        return None
    return plot_c(results, fair, out, "fair: OpenSearch on one core, each agent on the other")


def plot_d(results: dict[str, Any], case: dict[str, Any], out: Path) -> Path:
    fig, ax = _new("d. latency: line written -> searchable")
    for row in case["rows"] + case.get("peer_rows", []):
        lat = row["latencies"]
        if not lat:
            continue
        ys = [(i + 1) / len(lat) for i in range(len(lat))]
        agent = row.get("agent", "logship")
        ax.plot(lat, ys, linestyle="-" if agent == "logship" else ":",
                label=f"{agent} {row['rate_lines_per_s']:,} lines/s: p50 {row['latency_s']['p50']:.2f} s, "
                f"p99 {row['latency_s']['p99']:.2f} s")  # fmt: skip
    ax.axvline(1.5, color="red", linestyle="--", linewidth=1, label="target p99 <= 1.5 s")
    ax.set_xlabel("seconds")
    ax.set_ylabel("share of probe lines searchable")
    ax.legend(fontsize=7)
    return _save(fig, results, case, out / "d_latency.png")


def plot_e(results: dict[str, Any], case: dict[str, Any], out: Path) -> Path:
    r = case["result"]
    fig, ax = _new(f"e. {r['outage_s']:.0f} s OpenSearch outage at {r['rate_lines_per_s']:,} lines/s; "
                   f"drained {r['drain_s']} s after")  # fmt: skip
    for key, name, color in (
        ("shipper_rss_series", "shipper", LOGSHIP),
        ("aggregator_rss_series", "aggregator", RSYSLOG),
    ):
        ax.plot([t for t, _ in r[key]], [m for _, m in r[key]], label=f"{name} RSS", color=color)
    for pe in case.get("peers", []):
        if "shipper_rss_series" in pe:
            series = pe["shipper_rss_series"]
            label = f"{pe['agent']} RSS (its own run; drained {pe['drain_s']} s after)"
            color = AGENT_COLORS.get(pe["agent"], CEILING)
            ax.plot([t for t, _ in series], [m for _, m in series], color=color, linestyle="--", label=label)
    ax.axvspan(r["pause_at_s"], r["resume_at_s"], color="red", alpha=0.1, label="OpenSearch paused")
    ax.axvspan(r["resume_at_s"], r["resume_at_s"] + r["drain_s"], color="orange", alpha=0.1, label="draining")
    ax.axhline(64, color=LOGSHIP, linestyle=":", linewidth=1, label="shipper target 64 MiB")
    ax.axhline(150, color=RSYSLOG, linestyle=":", linewidth=1, label="aggregator target 150 MiB")
    ax.set_xlabel("seconds")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    return _save(fig, results, case, out / "e_outage.png")


AGENT_NAMES = {"logship": "logship", "fluentbit": "Fluent Bit"}


def _cost_panel(ax: Any, rows: list[dict[str, Any]], x_key: str, xlabel: str, title: str) -> None:
    """CPU s/GiB (solid, left axis) and peak RSS (dashed, right axis) against `x_key`, one colour per
    agent, log-scale x."""
    rss_ax = ax.twinx()
    for agent in sorted({r["agent"] for r in rows}, key=lambda a: a != "logship"):
        mine = sorted((r for r in rows if r["agent"] == agent and "error" not in r), key=lambda r: r[x_key])
        if not mine:
            continue
        xs = [r[x_key] for r in mine]
        color = AGENT_COLORS.get(agent, FILEBEAT)
        name = AGENT_NAMES.get(agent, agent)
        ax.plot(xs, [r["cpu_s_per_gib"] for r in mine], "o-", color=color, label=f"{name} CPU s/GiB")
        rss_ax.plot(xs, [r["rss_peak_mib"] for r in mine], "s--", color=color, alpha=0.7, label=f"{name} peak RSS")
    for r in (r for r in rows if "error" in r):  # a point without figures says so where it would be
        name = AGENT_NAMES.get(r["agent"], r["agent"])
        ax.annotate(f"{name}:\nno result", (r[x_key], 0), textcoords="offset points", xytext=(0, 8), ha="center",
                    fontsize=6, color=AGENT_COLORS.get(r["agent"], FILEBEAT))  # fmt: skip
    ax.set_xscale("log")
    ticks = sorted({r[x_key] for r in rows})
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel(xlabel, fontsize=8)
    cpu = [r["cpu_s_per_gib"] for r in rows if "error" not in r and r["cpu_s_per_gib"] > 0]
    rss = [r["rss_peak_mib"] for r in rows if "error" not in r and r["rss_peak_mib"] > 0]
    # one agent far above the other at a point (Fluent Bit at 5,000 files) would flatten the rest
    wide = (len(cpu) > 1 and max(cpu) > 10 * min(cpu)) or (len(rss) > 1 and max(rss) > 10 * min(rss))
    ax.set_ylabel(f"CPU seconds per GiB read (solid{', log scale' if wide else ''})", fontsize=8)
    rss_ax.set_ylabel(f"peak RSS MiB (dashed{', log scale' if wide else ''})", fontsize=8)
    for a in (ax, rss_ax):
        if wide:
            a.set_yscale("log")
            a.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            a.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "1235" else ""))
        else:
            a.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = rss_ax.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=7, loc="best")


def plot_g(results: dict[str, Any], case: dict[str, Any], out: Path) -> Path:
    fig, axes = _new("g. how cost grows: each agent on one core, Docker json-file, compression off", 3, 6)
    fig.set_size_inches(19, 6.2)
    fig.subplots_adjust(wspace=0.55, left=0.05, right=0.97)
    fb = case.get("agents", {}).get("fluentbit", "")
    missing = "" if not str(fb).startswith("not measured") else " (Fluent Bit not measured)"
    cond = case["conditions"]
    _cost_panel(axes[0], case["files"], "files", "files (log scale)",
                f"shipper vs files, {cond['files_sweep_line_bytes_on_disk']}-byte lines{missing}")  # fmt: skip
    _cost_panel(axes[1], case["line_sizes"], "line_bytes", "line bytes as written by the application (log scale)",
                f"shipper vs line size, 1 file{missing}")  # fmt: skip
    ax = axes[2]
    conns = sorted((r for r in case["connections"] if "error" not in r), key=lambda r: r["connections"])
    xs = [r["connections"] for r in conns]
    ax.plot(xs, [r["events_per_cpu_s"] or 0 for r in conns], "o-", color=LOGSHIP, label="events per CPU second")
    ax.plot(xs, [r["events_per_s"] for r in conns], "s--", color=LOGSHIP, alpha=0.7, label="events/s (wall clock)")
    for r in conns:
        ax.annotate(f"{r['aggregator_rss_peak_mib']:.0f} MiB", (r["connections"], r["events_per_s"]),
                    textcoords="offset points", xytext=(0, -12), ha="center", fontsize=6)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:,}" for x in xs], fontsize=7)
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("Lumberjack connections (log scale)", fontsize=8)
    ax.set_ylabel("events per second", fontsize=8)
    ax.set_title(f"logship aggregator -> blackhole sink, windows of {cond['window_size_aggregator_sweep']}"
                 " (labels: peak RSS)", fontsize=9)  # fmt: skip
    ax.legend(fontsize=7)
    return _save(fig, results, case, out / "g_growth.png")


def _save(fig: Figure, results: dict[str, Any], case: dict[str, Any], path: Path) -> Path:
    _footer(fig, results, case)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


PLOTTERS = {"a": plot_a, "b": plot_b, "c": plot_c, "d": plot_d, "e": plot_e, "g": plot_g}


def draw(results: dict[str, Any], out: Path) -> list[Path]:
    """One PNG per case that produced figures; a failed case draws nothing."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, case in results.get("cases", {}).items():
        if name in PLOTTERS and "error" not in case:
            paths.append(PLOTTERS[name](results, case, out))
        if name == "c" and "error" not in case:
            fair = plot_c_fair(results, case, out)
            if fair is not None:
                paths.append(fair)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m benchmarks.plots RESULTS.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    results = orjson.loads(path.read_bytes())
    for p in draw(results, path.with_suffix("")):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
