"""Benchmark case g's pure parts: the events and connections dealt to sender processes, the line
size on disk, the open-files limit, and the report of the sweeps."""

from __future__ import annotations

import resource

from hypothesis import given
from hypothesis import strategies as st

from benchmarks import report
from benchmarks.cases.b_aggregator import _split
from benchmarks.cases.g_growth import disk_line_bytes
from benchmarks.procs import open_files_limit
from benchmarks.workload import DOCKER_OVERHEAD, message_bytes


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=1, max_value=500))
def test_split_deals_everything_evenly(total: int, parts: int) -> None:
    shares = _split(total, parts)
    assert len(shares) == parts
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


def test_disk_line_bytes_is_the_message_newline_and_docker_json() -> None:
    for app_line in (64, 256, 16384):
        on_disk = disk_line_bytes(app_line)
        assert on_disk == app_line + 70
        # the generator writes a message of app_line - 1 bytes for it (the newline is Docker's "\n")
        assert message_bytes(on_disk) == app_line - 1
        assert on_disk - message_bytes(on_disk) == DOCKER_OVERHEAD


def test_open_files_limit_raises_and_restores() -> None:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = before
    wanted = soft + 10 if hard == resource.RLIM_INFINITY or soft + 10 <= hard else soft
    with open_files_limit(wanted) as (in_force, _):
        assert in_force >= wanted or in_force == resource.RLIM_INFINITY
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == in_force
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before


def _row(agent: str, files: int, **extra: object) -> dict[str, object]:
    return {"agent": agent, "files": files, "cpu_s_per_gib": 12.5, "rss_peak_mib": 50.0, "rss_settled_mib": 40.0,
            "lines_per_s": 1000.0, "mib_per_s": 10.0, **extra}  # fmt: skip


def test_report_prints_every_point_and_errors_on_one_line() -> None:
    g = {
        "conditions": {
            "files_sweep_line_bytes_on_disk": 256,
            "mib_per_point": 8,
            "events_per_connection_point": 1000,
            "window_size_aggregator_sweep": 256,
        },
        "agents": {"logship": "measured", "fluentbit": "fluent-bit 5.1.1"},
        "files": [_row("logship", 5000), {"agent": "fluentbit", "files": 5000, "error": "no event\nlog tail"}],
        "line_sizes": [_row("logship", 1, line_bytes=16384), _row("fluentbit", 1, line_bytes=16384)],
        "connections": [
            {
                "connections": 500,
                "events_per_s": 9000.0,
                "events_per_cpu_s": 30000.0,
                "aggregator_cpu_us_per_event": 33.3,
                "aggregator_rss_peak_mib": 140.0,
                "senders": 5,
                "sender_cpu_s": 4.5,
            }
        ],
    }
    lines = report.growth_lines(g)
    text = "\n".join(lines)
    assert "   5,000  logship       12.5 CPU s/GiB" in text
    assert "   5,000  Fluent Bit error: no event" in text and "log tail" not in text
    assert "16,384 B  Fluent Bit" in text
    assert "500 connections" in text and "30,000 events per CPU s" in text and "5 sender process(es)" in text
    table = "\n".join(report.growth_markdown(g))
    assert "| 5,000 | logship | 12.5 | 50.0 | 40.0 | 1,000 | 10.0 |" in table
    assert "| 500 | 9,000 | 30,000 | 33.3 | 140.0 | 5 |" in table
    assert report.growth_lines({}) == []
