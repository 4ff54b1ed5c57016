"""Sizes of each mode. Smoke: seconds per case, run by the test suite. Quick: <= 2 minutes.
Full: <= 20 minutes, the figures the README quotes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    name: str
    line_bytes: int = 256
    # a: shipper -> blackhole
    a_file_counts: tuple[int, ...] = (1, 100, 1000)
    a_cri_file_counts: tuple[int, ...] = (1, 1000)  # CRI sets as well as the Docker ones
    a_repeats: int = 3  # each figure is the median of this many runs
    a_compression: tuple[int, ...] = (0, 3)
    a_mib: int = 256  # per file set
    a_peer_lines: int = 262_144  # Filebeat is timed over this many lines of each set (64 MiB)
    # b: protocol client -> aggregator -> blackhole OpenSearch
    b_events: int = 1_000_000
    b_connections: int = 4
    # c: files -> shipper -> aggregator -> OpenSearch, and the node's ceiling
    c_files: int = 100
    c_lines: int = 400_000
    c_connection_variants: tuple[int, ...] = (4,)  # also run logship with this many shipper connections
    c_ceiling_runs: int = 2  # the best of these is the ceiling (the node's speed wanders on shared cores)
    c_fair: bool = True  # also run the case with OpenSearch on one core and each agent on the other
    # d: latency
    d_rates: tuple[int, ...] = (1000, 10000)
    d_seconds: float = 30.0
    d_files: int = 20
    d_probes_per_s: float = 10.0
    # e: outage
    e_rate: int = 2000
    e_warmup: float = 10.0
    e_outage: float = 60.0
    e_files: int = 20
    e_drain_timeout: float = 240.0
    # f: files -> shipper -> 1/2/3 aggregators -> a 3-node cluster (c_files files)
    f_lines: int = 400_000
    f_aggregators: tuple[int, ...] = (1, 2, 3)
    f_cluster_heap: str = "512m"
    # g: how cost grows. Shipper: files (at line_bytes on disk) and line size (at 1 file), each point
    # g_mib MiB, Docker format, compression off; aggregator: connections, g_events per point
    g_file_counts: tuple[int, ...] = (1, 10, 100, 1000, 5000)
    g_line_sizes: tuple[int, ...] = (64, 256, 1024, 4096, 16384)  # the line as the application wrote it
    g_mib: int = 128
    g_min_windows: int = 20  # every set holds at least this many shipper windows of lines
    g_repeats: int = 1
    g_connections: tuple[int, ...] = (1, 10, 100, 500)
    g_events: int = 1_024_000
    g_window: int = 256  # one window size at every connection count (see benchmarks/cases/g_growth.py)
    g_connections_per_sender: int = 100  # connections per load process
    # shared settings of the pipeline under test
    shipper_connections: int = 1  # >1: that many connections to the aggregator (output.workers, loadbalance)
    window_size: int = 2048
    max_pending_windows: int = 4
    bulk_max_docs: int = 5000
    bulk_max_bytes: int = 5 * 1024 * 1024
    bulk_max_delay: float = 1.0
    bulk_concurrency: int = 2
    peers: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return asdict(self)


PROFILES = {
    "smoke": Profile(
        name="smoke",
        a_file_counts=(1, 10),
        a_cri_file_counts=(1,),
        a_repeats=1,
        a_compression=(0, 3),
        a_mib=2,
        b_events=20_000,
        b_connections=2,
        c_files=5,
        c_lines=5_000,
        c_ceiling_runs=1,
        c_connection_variants=(2,),
        d_rates=(200, 1000),
        d_seconds=3.0,
        d_files=4,
        d_probes_per_s=5.0,
        e_rate=500,
        e_warmup=2.0,
        e_outage=3.0,
        e_files=4,
        e_drain_timeout=90.0,
        f_lines=5_000,
        g_file_counts=(1, 10),
        g_line_sizes=(64, 16384),
        g_mib=1,
        g_min_windows=0,
        g_connections=(1, 10),
        g_events=20_480,
    ),
    "quick": Profile(
        name="quick",
        a_file_counts=(1, 1000),
        a_cri_file_counts=(1,),
        a_repeats=1,
        a_compression=(0, 3),
        a_mib=16,
        b_events=200_000,
        c_files=100,
        c_lines=40_000,
        c_ceiling_runs=1,
        c_connection_variants=(),
        d_rates=(1000, 10000),
        d_seconds=6.0,
        d_files=20,
        e_rate=2000,
        e_warmup=3.0,
        e_outage=10.0,
        e_drain_timeout=120.0,
        f_lines=30_000,
        g_file_counts=(1, 100, 1000),
        g_line_sizes=(64, 1024, 16384),
        g_mib=32,
        g_events=512_000,
    ),
    "full": Profile(name="full"),
}
