"""The benchmark suite still works: a smoke run (tiny sizes) produces every figure and plot.

It checks that figures exist and are positive, never how fast anything is: speed is reported by
`python -m benchmarks`, not asserted. The run starts its own OpenSearch instance (`bench-smoke`,
port 9231) because case e pauses the node; it is stopped at the end unless it was already running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from benchmarks import report

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_smoke_run_writes_results_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = [
        sys.executable, "-m", "benchmarks", "--mode", "smoke", "--out", str(out),
        "--node-name", os.environ.get("LOGSHIP_BENCH_SMOKE_NODE", "bench-smoke"),
        "--node-port", os.environ.get("LOGSHIP_BENCH_SMOKE_PORT", "9231"), "--node-heap", "512m",
        "--peers", os.environ.get("LOGSHIP_BENCH_SMOKE_PEERS", "auto"),
    ]  # fmt: skip
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, f"benchmark smoke run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert "Targets" in proc.stdout

    (path,) = out.glob("*.json")
    results = orjson.loads(path.read_bytes())
    assert results["mode"] == "smoke"
    for key in ("cpu_count", "cpu_model", "memory_gib"):
        assert results["machine"][key]
    for key in ("logship", "python", "opensearch"):
        assert results["versions"][key]
    cases = results["cases"]
    assert set(cases) == {"a", "b", "c", "d", "e"}
    for name, case in cases.items():
        assert "error" not in case, f"case {name}: {case.get('error')}"
        assert case["conditions"], f"case {name} lacks its conditions"
        # the host's speed around the case: two reference timings and the share of CPU stolen
        assert len(case["host"]["reference_us"]) == 2 and all(_positive(x) for x in case["host"]["reference_us"])
        assert 0 <= case["host"]["steal_share"] <= 1
    assert "Host speed" in proc.stdout

    logship_a = [r for r in cases["a"]["rows"] if r["agent"] == "logship"]
    assert {(r["files"], r["format"], r["compression_level"]) for r in logship_a} == {
        (n, fmt, z) for n, fmt in ((1, "docker json-file"), (10, "docker json-file"), (1, "cri")) for z in (0, 3)
    }
    for r in logship_a:
        assert r["received"] >= r["lines"]
        for key in ("lines_per_s", "mib_per_s", "rss_peak_mib"):
            assert _positive(r[key]), (key, r)
        assert r["cpu_s_per_gib"] >= 0  # sampled every 100 ms: a 2 MiB run may fall between two samples
    for r in cases["a"]["peers"]:
        assert "error" not in r, r
        assert _positive(r["lines_per_s"])

    b = cases["b"]["result"]
    assert b["events"] == results["settings"]["b_events"]
    assert _positive(b["events_per_s"]) and _positive(b["aggregator_rss_peak_mib"])

    c = cases["c"]
    assert c["logship"]["docs_indexed"] == c["logship"]["docs"]
    assert c["ceiling"]["docs_indexed"] == c["ceiling"]["docs"] == c["logship"]["docs"]
    assert c["ceiling"]["requests_with_errors"] == 0
    assert _positive(c["logship"]["steady_docs_per_s"]) and _positive(c["ceiling"]["steady_docs_per_s"])
    assert _positive(c["ratio_to_ceiling"])
    # the ceiling is clocked by the same _count watch as the agents, its own request clock kept beside
    assert c["ceiling"]["timeline"][-1][1] == c["ceiling"]["docs"]
    assert _positive(c["ceiling"]["acked_steady_docs_per_s"])
    for peer in c["peers"]:
        assert "error" not in peer, peer
        if peer["agent"] in ("filebeat", "filebeat9"):  # through logship's aggregator: every line
            assert peer["docs_indexed"] == peer["docs"]
        else:  # rsyslog on its own: what it delivered, and what it did not, is reported
            assert peer["docs_indexed"] + peer["docs_missing"] == peer["docs"]
            assert _positive(peer["steady_docs_per_s"])

    for row in cases["d"]["rows"] + cases["d"]["peer_rows"]:  # peer_rows: Fluent Bit, where it is built
        assert row["probes_seen"] == row["probes"] > 0
        assert _positive(row["latency_s"]["p50"]) and _positive(row["latency_s"]["p99"])

    e = cases["e"]["result"]
    assert e["drained"] and e["docs_indexed"] == e["lines_written"] > 0
    for peer in cases["e"]["peers"]:  # Fluent Bit, where it is built, through the same outage
        assert "error" not in peer, peer
        assert peer["docs_indexed"] <= peer["lines_written"] and _positive(peer["shipper_rss_peak_outage_mib"])
    assert _positive(e["shipper_rss_peak_outage_mib"]) and _positive(e["aggregator_rss_peak_outage_mib"])

    names = {t["target"] for t in results["targets"]}
    for name in ("shipper throughput, one core", "aggregator, blackhole sink", "end to end vs node ceiling",
                 "latency p99 at 10,000 lines/s", "aggregator RSS", "shipper peak RSS, 1 file(s)"):  # fmt: skip
        assert name in names, name
    # CPU per GiB is judged on every set of 1 file and of the largest count, each format, each level
    cpu = {t["target"] for t in results["targets"] if t["target"].startswith("shipper CPU/GiB")}
    assert cpu == {f"shipper CPU/GiB, {fmt}, {n} file(s), z{z}" for fmt, n in (("docker", 1), ("docker", 10),
                   ("cri", 1)) for z in (0, 3)}  # fmt: skip
    fluentbit_rows = [r for r in cases["a"]["peers"] if r["agent"] == "fluentbit"]
    if results["versions"]["fluentbit"]:  # measured beside logship: its figures decide the verdicts
        sets = {(r["files"], r["format"]) for r in fluentbit_rows}
        assert sets == {(1, "docker json-file"), (10, "docker json-file"), (1, "cri")}
        assert all(t["met"] is not None for t in results["targets"] if t["target"] in cpu)
        # on the 1-file sets it also ships, plain and gzip, into a blackhole _bulk server: every line arrives
        bulk = [r for r in cases["a"]["peers"] if r["agent"] == "fluentbit-bulk"]
        assert {(r["files"], r["format"], r["compression_level"]) for r in bulk} == {
            (1, fmt, z) for fmt in ("docker json-file", "cri") for z in (0, 6)
        }
        assert all(r["received"] >= r["lines"] for r in bulk)
        assert len(report.shipping_pairs(cases["a"])) == 4
    else:
        assert not fluentbit_rows and results["peers"]["fluentbit"].startswith("not measured")
    pngs = sorted(out.glob("*/*.png"))
    assert [p.name for p in pngs] == [
        "a_shipper.png",
        "b_aggregator.png",
        "c_pipeline.png",
        "c_pipeline_fair.png",
        "d_latency.png",
        "e_outage.png",
    ]
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, png
    assert results["plots"] == [str(p.relative_to(out)) for p in pngs]


def test_profile_samples_the_shipper_from_outside_and_the_summary_names_its_code(tmp_path: Path) -> None:
    """`--profile DIR` (py-spy, the default profiler) leaves one stack file per shipper run, with samples
    in logship's own code, and `benchmarks.profiling` turns it into tables."""
    prof = tmp_path / "prof"
    argv = [
        sys.executable, "-m", "benchmarks", "--mode", "smoke", "--cases", "a", "--peers", "none",
        "--out", str(tmp_path / "results"), "--profile", str(prof),
        "--set", "a_file_counts=1", "--set", "a_cri_file_counts=", "--set", "a_compression=3", "--set", "a_mib=32",
    ]  # fmt: skip
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"profiled run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    (stacks,) = prof.glob("shipper-*.txt")
    assert stacks.stat().st_size > 0
    summary = subprocess.run(
        [sys.executable, "-m", "benchmarks.profiling", str(prof), "--top", "40"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert summary.returncode == 0, summary.stderr
    assert "samples of the process running" in summary.stdout
    assert "shipper/" in summary.stdout.split("own time by source file")[1]
    (path,) = (tmp_path / "results").glob("*.json")
    assert "sampled by py-spy" in orjson.loads(path.read_bytes())["note"]
