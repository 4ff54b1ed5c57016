"""Case g of the benchmarks still works: a smoke run (tiny sizes) has every point of every sweep,
for logship and, where it is built, Fluent Bit, and draws its figure.

Like test_bench_smoke.py it checks that figures exist, never how fast anything is. Case g needs no
OpenSearch node: it starts real shippers, Fluent Bit, aggregators and load clients on loopback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from benchmarks.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.slow]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_growth_smoke_run_has_every_point_and_the_plot(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, "-m", "benchmarks", "--mode", "smoke", "--cases", "g", "--out", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, f"benchmark smoke run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"

    (path,) = out.glob("*.json")
    results = orjson.loads(path.read_bytes())
    assert set(results["cases"]) == {"g"}
    g = results["cases"]["g"]
    assert "error" not in g, g.get("traceback")
    profile = PROFILES["smoke"]
    fluentbit = results["versions"]["fluentbit"]
    agents = {"logship", "fluentbit"} if fluentbit else {"logship"}
    if not fluentbit:
        assert g["agents"]["fluentbit"].startswith("not measured")

    sweeps = (("files", "files", profile.g_file_counts), ("line_sizes", "line_bytes", profile.g_line_sizes))
    for key, x_key, xs in sweeps:
        rows = g[key]
        assert {(r["agent"], r[x_key]) for r in rows} == {(a, x) for a in agents for x in xs}, key
        assert len(rows) == len(agents) * len(xs)
        for r in rows:
            assert "error" not in r, r
            assert r["format"] == "docker json-file"
            assert r["received"] >= r["lines"] > 0
            assert _positive(r["rss_peak_mib"]) and _positive(r["lines_per_s"])
            assert r["cpu_s_per_gib"] >= 0  # sampled every 100 ms: a 1 MiB run may fall between two samples
            assert r["files"] == (r[x_key] if key == "files" else 1)
    for r in g["line_sizes"]:
        # the line as the application wrote it, plus the 71 bytes of Docker's JSON
        assert r["avg_line_bytes"] == pytest.approx(r["line_bytes"] + 71, abs=1)
    for r in g["files"]:
        assert r["avg_line_bytes"] == pytest.approx(profile.line_bytes, abs=1)

    conns = g["connections"]
    assert [r["connections"] for r in conns] == list(profile.g_connections)
    for r in conns:
        assert "error" not in r, r
        assert r["events"] == profile.g_events  # the same total at every point
        assert r["window"] == profile.g_window
        assert _positive(r["events_per_s"]) and _positive(r["events_per_cpu_s"])
        assert _positive(r["aggregator_rss_peak_mib"])
    assert g["conditions"]["open_files_limit"][0] >= max(profile.g_file_counts)

    (png,) = out.glob("*/*.png")
    assert png.name == "g_growth.png"
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert results["plots"] == [str(png.relative_to(out))]
    assert "g. how cost grows" in proc.stdout
