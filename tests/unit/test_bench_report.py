"""The benchmark suite's pure logic: percentiles, steady rates, targets, bulk bodies for the ceiling."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from benchmarks import report
from benchmarks.loader import _probe_seq, bulk_bodies, percentiles, steady_rate


def test_percentiles_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]  # 1..100
    p = percentiles(values)
    assert p["p50"] == 50.0
    assert p["p99"] == 99.0
    assert p["max"] == 100.0
    assert percentiles([]) == {}
    assert percentiles([3.0])["p99"] == 3.0


def test_steady_rate_ignores_start_up() -> None:
    # nothing for 5 s (start-up), then 1000 docs/s
    timeline = [(float(t), 0) for t in range(6)] + [(5.0 + t, 1000 * t) for t in range(1, 11)]
    assert steady_rate(timeline, 10_000) == pytest.approx(1000.0)
    assert steady_rate([(0.0, 0)], 10) == 0.0
    # everything arrived between two polls: fall back to the overall rate
    assert steady_rate([(0.0, 0), (2.0, 10)], 10) == pytest.approx(5.0)


def test_probe_seq_parses_marker() -> None:
    assert _probe_seq("lsprobeabc seq=42 probe line") == 42
    assert _probe_seq("no marker here") is None
    assert _probe_seq("seq=x") is None


def test_bulk_bodies_cut_by_docs_and_bytes(tmp_path: Path) -> None:
    events = [
        {
            "@timestamp": "2026-11-26T10:00:00.000Z",
            "@metadata": {"_id": f"id-{i}"},
            "message": "m" * 100,
            "tags": ["containers"],
        }
        for i in range(25)
    ]
    recorded = tmp_path / "events.ndjson"
    recorded.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    bodies, docs = bulk_bodies(recorded, max_docs=10, max_bytes=10_000_000)
    assert docs == 25
    assert [n for n, _ in bodies] == [10, 10, 5]
    first_action = orjson.loads(bodies[0][1].split(b"\n")[0])
    assert first_action == {"create": {"_index": "logstash-logs-containers-2026.11.26", "_id": "id-0"}}
    assert b"@metadata" not in bodies[0][1]
    small, _ = bulk_bodies(recorded, max_docs=1000, max_bytes=1000)  # ~200 B per item
    assert all(len(body) <= 1000 for _, body in small)
    assert sum(n for n, _ in small) == 25


def _results(**cases: object) -> dict[str, object]:
    return {"cases": cases}


def _a_row(agent: str, files: int, fmt: str, cpu: float, rss: float, **extra: float) -> dict[str, object]:
    row = {"agent": agent, "files": files, "format": fmt, "cpu_s_per_gib": cpu, "rss_peak_mib": rss}
    row |= {"lines_per_s": 1000.0, "mib_per_s": 10.0, "rss_settled_mib": rss / 2}
    return row | extra


def test_targets_met_and_short() -> None:
    results = _results(
        a={
            "rows": [
                _a_row("logship", 1, "docker json-file", 20.0, 40.0, compression_level=0, mib_per_s=60.0),
                _a_row("logship", 1000, "docker json-file", 30.0, 70.0, compression_level=0, mib_per_s=30.0),
                _a_row("logship", 1, "cri", 10.0, 30.0, compression_level=0, mib_per_s=60.0),
            ],
            "peers": [
                _a_row("fluentbit", 1, "docker json-file", 9.0, 80.0),
                _a_row("fluentbit", 1000, "docker json-file", 40.0, 200.0),
                _a_row("fluentbit", 1, "cri", 14.0, 70.0),
            ],
        },
        b={"result": {"events_per_s": 100_000.0, "aggregator_rss_peak_mib": 90.0}},
        c={
            "logship": {
                "aggregator_rss_peak_mib": 120.0,
                "steady_docs_per_s": 9500.0,
                "docs_per_s": 9000.0,
                "agent_cpu_s": 5.0,
                "aggregator_cpu_s": 7.0,
                "agent_rss_peak_mib": 50.0,
            },
            "ceiling": {"steady_docs_per_s": 10_000.0},
            "ratio_to_ceiling": 0.95,
        },
        d={"rows": [{"rate_lines_per_s": 10_000, "latency_s": {"p99": 1.5}, "aggregator_rss_peak_mib": 80.0}]},
    )
    by_name = {t["target"]: t for t in report.targets(results)}
    assert by_name["shipper throughput, one core"]["met"] is True
    # CPU per GiB judged against Fluent Bit's figure on the same file set and format
    assert by_name["shipper CPU/GiB, docker, 1 file(s), z0"]["met"] is False
    assert by_name["shipper CPU/GiB, docker, 1000 file(s), z0"]["met"] is True
    assert by_name["shipper CPU/GiB, cri, 1 file(s), z0"]["met"] is True
    assert "14.0" in by_name["shipper CPU/GiB, cri, 1 file(s), z0"]["goal"]
    # peak RSS: the worst of the formats, against the fixed limit and 0.6 x Fluent Bit's
    assert by_name["shipper peak RSS, 1 file(s)"]["value"] == 40.0
    assert by_name["shipper peak RSS, 1 file(s)"]["met"] is False  # over 36 MiB
    assert by_name["shipper peak RSS, 1000 file(s)"]["met"] is False  # over 48 MiB
    assert by_name["aggregator, blackhole sink"]["met"] is False
    assert by_name["end to end vs node ceiling"]["value"] == pytest.approx(95.0)
    assert by_name["latency p99 at 10,000 lines/s"]["met"] is True
    assert by_name["aggregator RSS"]["value"] == 120.0
    assert "| aggregator, blackhole sink | >= 250,000 events/s | 100,000 events/s | short |" in report.markdown(
        {**results, "targets": list(by_name.values())}
    )


def test_targets_not_measured_when_case_failed_or_too_small() -> None:
    results = _results(
        a={"rows": [_a_row("logship", 10, "docker json-file", 20.0, 30.0, compression_level=0, mib_per_s=5.0)]},
        b={"error": "boom"},
        d={"rows": [{"rate_lines_per_s": 1000, "latency_s": {"p99": 0.9}, "aggregator_rss_peak_mib": 80.0}]},
    )
    by_name = {t["target"]: t for t in report.targets(results)}
    assert by_name["aggregator, blackhole sink"]["met"] is None
    # a smoke run at 1,000 lines/s and 10 files measures, but cannot judge, the 10,000 / 1,000 targets
    assert by_name["latency p99 at 10,000 lines/s"]["met"] is None
    # no Fluent Bit beside it: CPU per GiB is measured but not judged
    assert by_name["shipper CPU/GiB, docker, 10 file(s), z0"]["met"] is None
    assert by_name["shipper peak RSS, 10 file(s)"]["met"] is None
    assert by_name["end to end vs node ceiling"]["met"] is None


def test_profile_overrides() -> None:
    from benchmarks.profiles import PROFILES
    from benchmarks.run import with_overrides

    p = with_overrides(PROFILES["quick"], ["max_pending_windows=16", "d_rates=500,2000", "e_outage=5"])
    assert (p.max_pending_windows, p.d_rates, p.e_outage) == (16, (500, 2000), 5.0)
    assert with_overrides(PROFILES["quick"], []) is PROFILES["quick"]
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        with_overrides(PROFILES["quick"], ["no_such_key=1"])
    with pytest.raises(SystemExit, match="not a valid int"):
        with_overrides(PROFILES["quick"], ["window_size=big"])


def test_fluent_bit_shipping_is_paired_beside_logship_and_judges_nothing() -> None:
    docker = "docker json-file"
    rows = [
        _a_row("logship", 1, docker, 7.5, 50.0, compression_level=0),
        _a_row("logship", 1, docker, 9.5, 37.0, compression_level=3),
        _a_row("logship", 1, "cri", 10.0, 37.0, compression_level=3),
    ]
    null = _a_row("fluentbit", 1, docker, 7.7, 80.0)
    bulk = [
        _a_row("fluentbit-bulk", 1, docker, 12.5, 100.0, compression_level=0),
        _a_row("fluentbit-bulk", 1, docker, 38.0, 20.0, compression_level=6),
        _a_row("fluentbit-bulk", 1, "cri", 40.0, 90.0, compression_level=6) | {"error": "boom"},
    ]
    a = {"rows": rows, "peers": [null, *bulk]}
    # plain beside logship uncompressed, gzip beside logship's default zlib 3; a failed run pairs with nothing
    pairs = report.shipping_pairs(a)
    assert [(m["compression_level"], p["compression_level"]) for m, p in pairs] == [(0, 0), (3, 6)]
    assert "logship z3 9.5 CPU s/GiB, Fluent Bit's opensearch output gzip 38.0 (0.25x)" in report.markdown(
        _results(a=a)
    )
    # the targets are still judged against the null output only: its CPU and its RSS (not the bulk row's 20 MiB)
    with_bulk = {t["target"]: t for t in report.targets(_results(a=a))}
    without = {t["target"]: t for t in report.targets(_results(a={"rows": rows, "peers": [null]}))}
    assert with_bulk == without
    assert with_bulk["shipper CPU/GiB, docker, 1 file(s), z3"]["met"] is False


def test_fluent_bit_shipping_that_measured_no_cpu_is_reported_not_divided_by() -> None:
    # a smoke-sized run can end inside one 10 ms clock tick, so a peer's CPU may read 0
    rows = [_a_row("logship", 1, "cri", 25.6, 44.0, compression_level=0)]
    a = {"rows": rows, "peers": [_a_row("fluentbit-bulk", 1, "cri", 0.0, 12.0, compression_level=0)]}
    text = "\n".join(report.summary_lines(_results(a=a))) + report.markdown(_results(a=a))
    assert text.count("Fluent Bit's opensearch output plain 0.0 (too short a run to compare)") == 2
