"""The targets, met or short, and the tables printed after a run (also as Markdown for the README).

python -m benchmarks.report benchmarks/results/<timestamp>.json [--markdown]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()) and "error" not in r:
            return r
    return None


def _shipper_targets(a_rows: list[dict[str, Any]], peers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CPU per GiB against Fluent Bit's on the same set, and peak RSS against the fixed limits and
    0.6 x Fluent Bit's, at 1 file and at the largest file count of the run."""
    out: list[dict[str, Any]] = []
    mine = [r for r in a_rows if "error" not in r and r.get("agent") == "logship"]
    fb = [r for r in peers if "error" not in r and r.get("agent") == "fluentbit"]
    counts = sorted({r["files"] for r in mine})
    judged = sorted({1, counts[-1]} & set(counts)) if counts else []
    for fmt in ("docker json-file", "cri"):
        for files in judged:
            peer = next((r for r in fb if r["files"] == files and r["format"] == fmt), None)
            for r in (r for r in mine if r["files"] == files and r["format"] == fmt):
                ref = peer["cpu_s_per_gib"] if peer else None
                v = r["cpu_s_per_gib"]
                goal = f"<= Fluent Bit's {ref:.1f}" if ref is not None else "<= Fluent Bit's (not measured)"
                out.append({"target": f"shipper CPU/GiB, {fmt.split()[0]}, {files} file(s), "
                            f"z{r['compression_level']}", "goal": goal, "value": v, "unit": "CPU s/GiB",
                            "met": None if ref is None else v <= ref, "measured_in": "a, same run"})  # fmt: skip
    for files in judged:
        limit = 36.0 if files == 1 else 48.0
        rows = [r for r in mine if r["files"] == files]
        v = max(r["rss_peak_mib"] for r in rows)
        peer_rss = [r["rss_peak_mib"] for r in fb if r["files"] == files]
        ref = 0.6 * min(peer_rss) if peer_rss else None
        goal = f"<= {limit:g} MiB and <= 0.6 x Fluent Bit's = " + (f"{ref:.1f}" if ref is not None else "?")
        # judged where the target is set (1 and 1,000 files) and Fluent Bit was measured beside it
        ok = None if (ref is None or files not in (1, 1000)) else v <= min(limit, ref)
        out.append({"target": f"shipper peak RSS, {files} file(s)", "goal": goal, "value": v, "unit": "MiB",
                    "met": ok, "measured_in": f"a: {files} files, any format/compression"})  # fmt: skip
    return out


def shipping_pairs(a: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(logship row, fluentbit-bulk row) on the same set: uncompressed beside plain, logship's default
    zlib 3 beside gzip. Not a target: the targets are judged against Fluent Bit's `null` output."""
    pairs = []
    for peer in a.get("peers", []):
        if peer.get("agent") != "fluentbit-bulk" or "error" in peer:
            continue
        level = 0 if not peer.get("compression_level") else 3
        mine = _row(a.get("rows", []), agent="logship", files=peer["files"], format=peer.get("format"),
                    compression_level=level)  # fmt: skip
        if mine:
            pairs.append((mine, peer))
    return pairs


def _shipping_text(mine: dict[str, Any], peer: dict[str, Any]) -> str:
    how = "plain" if not peer.get("compression_level") else "gzip"
    where = f"{str(peer.get('format', 'docker')).split()[0]}, {peer['files']} file(s)"
    cpu, ref = mine["cpu_s_per_gib"], peer["cpu_s_per_gib"]
    # CPU time comes in 10 ms clock ticks: a short run (the smoke profile) can measure none
    ratio = f"{cpu / ref:.2f}x" if ref > 0 else "too short a run to compare"
    return (f"{where}: logship z{mine['compression_level']} {cpu:.1f} CPU s/GiB, Fluent Bit's opensearch output "
            f"{how} {ref:.1f} ({ratio})")  # fmt: skip


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value; `met` is None when the case did not run or failed, or the
    peer it is judged against was not measured."""
    cases = results.get("cases", {})
    out: list[dict[str, Any]] = []

    def add(name: str, goal: str, value: float | None, unit: str, ok: bool | None, where: str) -> None:
        out.append({"target": name, "goal": goal, "value": value, "unit": unit, "met": ok, "measured_in": where})

    a_rows = cases.get("a", {}).get("rows", [])
    one = _row(a_rows, files=1, compression_level=0)
    v = one["mib_per_s"] if one else None
    add("shipper throughput, one core", ">= 50 MiB/s", v, "MiB/s", None if v is None else v >= 50,
        "a: 1 file, compression off")  # fmt: skip
    out += _shipper_targets(a_rows, cases.get("a", {}).get("peers", []))
    b = cases.get("b", {}).get("result")
    v = b["events_per_s"] if b else None
    add("aggregator, blackhole sink", ">= 250,000 events/s", v, "events/s", None if v is None else v >= 250_000,
        "b: in-process sink")  # fmt: skip
    c = cases.get("c", {})
    head = c.get("fair") or c  # the fair case is the headline where it ran
    v = head.get("ratio_to_ceiling") if "logship" in head else None
    peers_c = [p for p in head.get("peers", []) if "steady_docs_per_s" in p]
    ahead = all(head["logship"]["steady_docs_per_s"] > p["steady_docs_per_s"] for p in peers_c) if v else None
    names = ", ".join(p["agent"] for p in peers_c) or "no peer measured"
    where = "c: fair (OpenSearch on one core, agent on the other)" if "fair" in c else "c: shared cores"
    add("end to end vs node ceiling", f">= 95%, ahead of every peer ({names})", None if v is None else 100 * v, "%",
        None if v is None else (v >= 0.95 and bool(ahead)), where)  # fmt: skip
    d_rows = cases.get("d", {}).get("rows", [])
    top = max(d_rows, key=lambda r: r.get("rate_lines_per_s", 0), default=None)
    v = top["latency_s"].get("p99") if top and top.get("latency_s") else None
    where = f"d: {top['rate_lines_per_s']:,} lines/s" if top else "d"
    ok = None if v is None else (v <= 1.5 if top and top["rate_lines_per_s"] >= 10_000 else None)
    peer_d = [
        r for r in cases.get("d", {}).get("peer_rows", []) if top and r["rate_lines_per_s"] == top["rate_lines_per_s"]
    ]
    if peer_d and peer_d[0].get("latency_s"):
        where += f"; Fluent Bit p99 {peer_d[0]['latency_s']['p99']:.2f} s, same run"
    add("latency p99 at 10,000 lines/s", "<= 1.5 s", v, "s", ok, where)
    agg = []
    if b:
        agg.append(b["aggregator_rss_peak_mib"])
    if cases.get("b", {}).get("http"):
        agg.append(cases["b"]["http"]["aggregator_rss_peak_mib"])
    if "logship" in c:
        agg.append(c["logship"]["aggregator_rss_peak_mib"])
    agg += [r["aggregator_rss_peak_mib"] for r in d_rows]
    e = cases.get("e", {}).get("result")
    if e:
        agg.append(e["aggregator_rss_peak_mib"])
    v = max(agg) if agg else None
    add("aggregator RSS", "<= 150 MiB", v, "MiB", None if v is None else v <= 150, "peak over b, c, d, e")
    return out


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit in ("events/s", "docs/s", "lines/s"):
        return f"{v:,.0f} {unit}"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "%":
        return f"{v:.0f}%"
    return f"{v:.1f} {unit}"


def _verdict(met: bool | None) -> str:
    return "met" if met else ("short" if met is False else "not measured")


def host_lines(cases: dict[str, Any]) -> list[str]:
    """How fast the host was around each case (benchmarks/conditions.py `reference_us`)."""
    parts = []
    for name, case in cases.items():
        host = case.get("host") if isinstance(case, dict) else None
        if host:
            before, after = host["reference_us"]
            parts.append(f"{name} {before:.2f}-{after:.2f} us (steal {host['steal_share']:.1%})")
    if not parts:
        return []
    return ["", "Host speed: CPU time of the reference operation around each case (lower is faster; absolute",
            "figures of two runs compare only at a similar reference)", "  " + ", ".join(parts)]  # fmt: skip


def summary_lines(results: dict[str, Any]) -> list[str]:
    """Plain text: every target, then each case's main figures and the peer ratios."""
    lines = ["", "Targets"]
    for t in results.get("targets", []):
        lines.append(f"  {t['target']:<40} {t['goal']:<44} {_fmt(t['value'], t['unit']):>17}  {_verdict(t['met'])}"
                     f"  ({t['measured_in']})")  # fmt: skip
    cases = results.get("cases", {})
    lines += host_lines(cases)
    a = cases.get("a", {})
    if a.get("rows"):
        lines += ["", "a. shipper -> blackhole"]
        for r in a["rows"] + a.get("peers", []):
            z = "-" if r.get("compression_level") is None else r["compression_level"]
            fmt = str(r.get("format", "docker")).split()[0]
            if "error" in r:
                lines.append(f"  {r['agent']:<9} {fmt:<6} files={r['files']:<5} z={z}  error: "
                             f"{r['error'][:100]}")  # fmt: skip
                continue
            lines.append(
                f"  {r['agent']:<9} {fmt:<6} files={r['files']:<5} z={z}"
                f"  {r['lines_per_s']:>10,.0f} lines/s"
                f"  {r['mib_per_s']:6.1f} MiB/s  {r['cpu_s_per_gib']:6.1f} CPU s/GiB"
                f" ({r.get('mib_per_cpu_s') or 0:5.1f} MiB per CPU s)  RSS {r['rss_peak_mib']:6.1f} MiB"
                f" (after {r.get('rss_settled_mib', 0):5.1f})"
                f"  on CPU {r.get('cpu_utilisation', 0):4.0%}, waiting for one {r.get('runqueue_wait_share', 0):4.0%}"
            )
        for peer in a.get("peers", []):
            if peer.get("agent") not in ("filebeat", "filebeat9"):
                continue
            mine = _row(a["rows"], files=peer.get("files"), compression_level=peer.get("compression_level"))
            if mine and "error" not in peer:
                lines.append(f"  logship/{peer['agent']} (files={peer['files']}, z={peer['compression_level']}): "
                             f"{mine['lines_per_s'] / peer['lines_per_s']:.2f}x lines/s")  # fmt: skip
        for mine, peer in shipping_pairs(a):
            lines.append(f"  shipping, not a target: {_shipping_text(mine, peer)}")
    b_case = cases.get("b", {})
    for key, what in (("result", "blackhole sink"), ("http", "_bulk over HTTP to a blackhole OpenSearch")):
        r = b_case.get(key)
        if r:
            cpu, rss = r["aggregator_cpu_us_per_event"], r["aggregator_rss_peak_mib"]
            lines.append(
                f"b. aggregator, {what}: {r['events_per_s']:,.0f} events/s, {cpu:.1f} us CPU/event "
                f"({r.get('events_per_cpu_s') or 0:,.0f} events per CPU s), RSS {rss} MiB, on CPU "
                f"{r.get('aggregator_cpu_utilisation', 0):.0%}, "
                f"waiting for one {r.get('aggregator_runqueue_wait_share', 0):.0%}"
            )
    c_case = cases.get("c", {})
    fair = c_case.get("fair", {})
    for c, title in ((c_case, "shared cores"), (fair, "fair: OpenSearch on one core, agent on the other")):
        if "logship" not in c:
            continue
        lines += ["", f"c. files -> shipper -> aggregator -> OpenSearch ({title})"]
        lines.append(f"  logship   {c['logship']['steady_docs_per_s']:>10,.0f} docs/s steady "
                     f"({c['logship']['docs_per_s']:,.0f} incl. start-up)")  # fmt: skip
        lines.append(f"  ceiling   {c['ceiling']['steady_docs_per_s']:>10,.0f} docs/s steady  -> ratio "
                     f"{c['ratio_to_ceiling']:.0%}")  # fmt: skip
        for v in c.get("logship_variants", []):
            lines.append(
                f"  logship, {v['shipper_connections']} connections {v['steady_docs_per_s']:>8,.0f} docs/s steady "
                f"-> ratio {v['ratio_to_ceiling']:.0%}"
            )
        lg, ce = c["logship"], c["ceiling"]
        if lg.get("opensearch_cpu_s") is not None and ce.get("opensearch_cpu_s") is not None:
            lines.append(
                f"  CPU seconds on the shared cores: logship run = shipper {lg['agent_cpu_s']} + aggregator "
                f"{lg['aggregator_cpu_s']} + OpenSearch {lg['opensearch_cpu_s']}; ceiling run = OpenSearch "
                f"{ce['opensearch_cpu_s']} (+ the loader)"
            )
            if "opensearch_runqueue_wait_s" in lg and "opensearch_runqueue_wait_s" in ce:
                lines.append(
                    f"  OpenSearch threads waiting for a core: {lg['opensearch_runqueue_wait_s']} s in "
                    f"{lg['seconds']:.0f} s (logship run), {ce['opensearch_runqueue_wait_s']} s in "
                    f"{ce['seconds']:.0f} s (ceiling run)"
                )
        if lg.get("avg_docs_per_bulk") and ce.get("avg_docs_per_bulk"):
            # average requests in flight = total time spent in requests / wall time
            lg_busy = lg["bulk_requests"] * lg["avg_bulk_latency_s"] / lg["seconds"]
            ce_busy = ce["bulk_requests"] * ce["avg_bulk_latency_s"] / ce.get("acked_seconds", ce["seconds"])
            lines.append(
                f"  bulks: logship {lg['bulk_requests']:.0f} requests of {lg['avg_docs_per_bulk']:,.0f} docs on "
                f"average, {lg['avg_bulk_latency_s']:.2f} s each, {lg_busy:.2f} in flight on average; ceiling "
                f"{ce['bulk_requests']} of {ce['avg_docs_per_bulk']:,.0f} docs, {ce['avg_bulk_latency_s']:.2f} s "
                f"each, {ce_busy:.2f} in flight"
            )
        for peer in c.get("peers", []):
            if "error" in peer:
                lines.append(f"  {peer['agent']:<9} error: {peer['error'][:100]}")
            else:
                share = f"ratio {peer['ratio_to_ceiling']:.0%}, " if "ratio_to_ceiling" in peer else ""
                lines.append(f"  {peer['agent']:<9} {peer['steady_docs_per_s']:>10,.0f} docs/s steady -> {share}"
                             f"logship/{peer['agent']} {peer['logship_ratio']:.2f}x")  # fmt: skip
    d = cases.get("d", {})
    for r in d.get("rows", []) + d.get("peer_rows", []):
        lat = r.get("latency_s", {})
        if lat:
            lines.append(f"d. {r.get('agent', 'logship'):<9} {r['rate_lines_per_s']:>6,} lines/s: "
                         f"latency p50 {lat['p50']:.2f} s, "
                         f"p99 {lat['p99']:.2f} s "
                         f"({r['probes_seen']}/{r['probes']} probes)")  # fmt: skip
    e = cases.get("e", {}).get("result")
    if e:
        lines.append(f"e. {e['outage_s']:.0f} s outage at {e['rate_lines_per_s']:,} lines/s: RSS shipper "
                     f"{e['shipper_rss_peak_outage_mib']} MiB, aggregator {e['aggregator_rss_peak_outage_mib']} MiB; "
                     f"drained in {e['drain_s']} s ({e['docs_indexed']:,}/{e['lines_written']:,} docs)")  # fmt: skip
    for pe in cases.get("e", {}).get("peers", []):
        if "error" in pe:
            lines.append(f"e. {pe['agent']}: {pe['error'][:200]}")
        else:
            lines.append(f"e. {pe['agent']}: RSS {pe['shipper_rss_peak_outage_mib']} MiB during the outage; "
                         f"drained in {pe['drain_s']} s "
                         f"({pe['docs_indexed']:,}/{pe['lines_written']:,} docs)")  # fmt: skip
    lines += growth_lines(cases.get("g", {}))
    for name, case in cases.items():
        if "error" in case:
            lines.append(f"{name}. FAILED: {case['error'][:300]}")
    return lines


def _growth_row(r: dict[str, Any], x: str) -> str:
    name = {"fluentbit": "Fluent Bit"}.get(r["agent"], r["agent"])
    if "error" in r:
        return f"  {x:>8}  {name:<10} error: {r['error'].splitlines()[0][:120]}"
    return (f"  {x:>8}  {name:<10} {r['cpu_s_per_gib']:7.1f} CPU s/GiB  RSS {r['rss_peak_mib']:6.1f} MiB"
            f" (after {r.get('rss_settled_mib', 0):5.1f})  {r['lines_per_s']:>10,.0f} lines/s"
            f"  {r['mib_per_s']:6.1f} MiB/s  waiting for a core {r.get('runqueue_wait_share', 0):4.0%}")  # fmt: skip


def growth_lines(g: dict[str, Any]) -> list[str]:
    """Case g: the shipper's cost per file count and line size, the aggregator's per connection count."""
    if not g.get("files") and not g.get("line_sizes") and not g.get("connections"):
        return []
    cond = g.get("conditions", {})
    lines = ["", f"g. how cost grows (each agent on one core; Fluent Bit: {g.get('agents', {}).get('fluentbit')})"]
    lines.append(f"  files (lines of {cond.get('files_sweep_line_bytes_on_disk')} B on disk, "
                 f"{cond.get('mib_per_point')} MiB per point):")  # fmt: skip
    lines += [_growth_row(r, f"{r['files']:,}") for r in g.get("files", [])]
    lines.append("  line size (as the application wrote it; Docker JSON adds 71 B on disk), 1 file:")
    lines += [_growth_row(r, f"{r['line_bytes']:,} B") for r in g.get("line_sizes", [])]
    lines.append(f"  aggregator -> blackhole sink, {cond.get('events_per_connection_point'):,} events per point, "
                 f"windows of {cond.get('window_size_aggregator_sweep')}:")  # fmt: skip
    for r in g.get("connections", []):
        if "error" in r:
            lines.append(f"  {r['connections']:>8,} connections  error: {r['error'].splitlines()[0][:120]}")
            continue
        lines.append(f"  {r['connections']:>8,} connections  {r['events_per_s']:>9,.0f} events/s  "
                     f"{r.get('events_per_cpu_s') or 0:>9,.0f} events per CPU s  "
                     f"({r['aggregator_cpu_us_per_event']:.1f} us/event)  RSS {r['aggregator_rss_peak_mib']:6.1f} MiB  "
                     f"{r['senders']} sender process(es) using {r['sender_cpu_s']:.1f} CPU s")  # fmt: skip
    return lines


def growth_markdown(g: dict[str, Any]) -> list[str]:
    """Case g as README tables: shipper per sweep point, logship beside Fluent Bit; aggregator per connections."""
    out: list[str] = []
    for key, x_name, x_key in (("files", "files", "files"), ("line_sizes", "line bytes", "line_bytes")):
        rows = [r for r in g.get(key, []) if "error" not in r]
        if not rows:
            continue
        out += ["", f"| {x_name} | agent | CPU s/GiB | peak RSS MiB | at rest MiB | lines/s | MiB/s |",
                "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            name = {"fluentbit": "Fluent Bit"}.get(r["agent"], r["agent"])
            out.append(f"| {r[x_key]:,} | {name} | {r['cpu_s_per_gib']:.1f} | {r['rss_peak_mib']:.1f} | "
                       f"{r['rss_settled_mib']:.1f} | {r['lines_per_s']:,.0f} | {r['mib_per_s']:.1f} |")  # fmt: skip
    conns = [r for r in g.get("connections", []) if "error" not in r]
    if conns:
        out += ["", "| connections | events/s | events per CPU s | CPU us/event | peak RSS MiB | sender processes |",
                "|---|---|---|---|---|---|"]  # fmt: skip
        for r in conns:
            out.append(f"| {r['connections']:,} | {r['events_per_s']:,.0f} | {r.get('events_per_cpu_s') or 0:,.0f} | "
                       f"{r['aggregator_cpu_us_per_event']:.1f} | {r['aggregator_rss_peak_mib']:.1f} | "
                       f"{r['senders']} |")  # fmt: skip
    return out


def markdown(results: dict[str, Any]) -> str:
    """The README tables: each target, the measured figure and the verdict; case a with the peers
    beside logship; case c, both variants."""
    out = ["| target | goal | measured | verdict | where |", "|---|---|---|---|---|"]
    for t in results.get("targets", []):
        out.append(f"| {t['target']} | {t['goal']} | {_fmt(t['value'], t['unit'])} | {_verdict(t['met'])} | "
                   f"{t['measured_in']} |")  # fmt: skip
    a = results.get("cases", {}).get("a", {})
    if a.get("rows"):
        out += ["", "| agent | format | files | zlib | lines/s | MiB/s | CPU s/GiB | peak RSS MiB | at rest MiB |",
                "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        rows = [r for r in a["rows"] + a.get("peers", []) if "error" not in r]
        rows.sort(key=lambda r: (str(r.get("format")), r["files"], r["agent"] != "logship", r["agent"]))
        for r in rows:
            z = "-" if r.get("compression_level") is None else r["compression_level"]
            out.append(f"| {r['agent']} | {str(r.get('format', 'docker')).split()[0]} | {r['files']:,} | {z} | "
                       f"{r['lines_per_s']:,.0f} | {r['mib_per_s']:.1f} | {r['cpu_s_per_gib']:.1f} | "
                       f"{r['rss_peak_mib']:.1f} | {r['rss_settled_mib']:.1f} |")  # fmt: skip
        pairs = shipping_pairs(a)
        if pairs:
            out += [
                "",
                "Shipping, not a target (Fluent Bit's `opensearch` output into a blackhole `_bulk` server):",
                "",
            ]
            out += [f"- {_shipping_text(mine, peer)}" for mine, peer in pairs]
    c_case = results.get("cases", {}).get("c", {})
    for c, title in ((c_case, "shared cores"), (c_case.get("fair", {}), "fair")):
        if "logship" not in c:
            continue
        ceil = c["ceiling"]["steady_docs_per_s"]
        out += ["", f"| {title}: run | steady docs/s | vs ceiling | agent CPU s | agent peak RSS MiB |",
                "|---|---|---|---|---|"]  # fmt: skip
        out.append(f"| ceiling (loader) | {ceil:,.0f} | 100% | | |")
        lg = c["logship"]
        out.append(f"| logship | {lg['steady_docs_per_s']:,.0f} | {c['ratio_to_ceiling']:.0%} | "
                   f"{lg['agent_cpu_s']} + aggregator {lg['aggregator_cpu_s']} | "
                   f"{lg['agent_rss_peak_mib']} + {lg['aggregator_rss_peak_mib']} |")  # fmt: skip
        for v in c.get("logship_variants", []):
            out.append(f"| logship, {v['shipper_connections']} connections | {v['steady_docs_per_s']:,.0f} | "
                       f"{v['ratio_to_ceiling']:.0%} | | |")  # fmt: skip
        for peer in c.get("peers", []):
            if "error" in peer:
                out.append(f"| {peer['agent']} | error: {peer['error'][:80]} | | | |")
                continue
            extra = f" + aggregator {peer['aggregator_cpu_s']}" if peer.get("aggregator_cpu_s") is not None else ""
            out.append(f"| {peer['agent']} | {peer['steady_docs_per_s']:,.0f} | "
                       f"{peer['steady_docs_per_s'] / ceil:.0%} | {peer.get('agent_cpu_s')}{extra} | "
                       f"{peer.get('agent_rss_peak_mib')} |")  # fmt: skip
    out += growth_markdown(results.get("cases", {}).get("g", {}))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report")
    p.add_argument("results", type=Path)
    p.add_argument("--markdown", action="store_true", help="print the README table instead")
    a = p.parse_args(argv)
    results = orjson.loads(a.results.read_bytes())
    if a.markdown:
        print(markdown(results))
    else:
        print("\n".join(summary_lines(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
