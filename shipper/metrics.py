"""Prometheus metrics of the shipper, in their own registry (served by logship.ops.OpsServer)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

TOP_FILES_BEHIND = 10


class _BehindCollector(Collector):
    """Bytes not yet read, computed at scrape time (an fstat per file).

    Per-file series are limited to the TOP_FILES_BEHIND files furthest behind, so a node with
    thousands of short-lived pod logs does not produce thousands of series; the totals cover every file.
    """

    def __init__(self, files: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._files = files

    def collect(self) -> Iterator[GaugeMetricFamily]:
        files = list(self._files())
        total = GaugeMetricFamily("logship_shipper_bytes_behind", "Bytes written to open files but not read yet")
        total.add_metric([], sum(b for _, b in files))
        yield total
        count = GaugeMetricFamily("logship_shipper_files_behind", "Open files with bytes not read yet")
        count.add_metric([], sum(1 for _, b in files if b > 0))
        yield count
        top = GaugeMetricFamily(
            "logship_shipper_file_bytes_behind",
            f"Bytes not read yet, for the {TOP_FILES_BEHIND} files furthest behind",
            labels=["path"],
        )
        for path, behind in heapq.nlargest(TOP_FILES_BEHIND, files, key=lambda f: f[1]):
            top.add_metric([path], behind)
        yield top


# why bytes could not be read (docs/guarantees.md explains each)
LOSS_REASONS = ("deleted_before_open", "truncated", "not_found", "open_files_cap", "deleted_bytes_cap")


class ShipperMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lines_read = Counter("logship_shipper_lines_read", "Lines read from log files", registry=r)
        self.bytes_read = Counter("logship_shipper_bytes_read", "Bytes read from log files", registry=r)
        self.events_sent = Counter("logship_shipper_events_sent", "Events handed to the output", registry=r)
        self.events_acked = Counter("logship_shipper_events_acked", "Events acknowledged by the aggregator", registry=r)
        self.open_files = Gauge("logship_shipper_open_files", "Files open for reading", registry=r)
        self.windows_pending = Gauge(
            "logship_shipper_windows_pending", "Windows sent and not yet acknowledged", registry=r
        )
        self.registry_errors = Counter(
            "logship_shipper_registry_write_errors", "Failed registry writes (retried)", registry=r
        )
        self.windows_queued = Gauge(
            "logship_shipper_windows_queued", "Windows built and waiting for the sender", registry=r
        )
        self.bytes_lost = Counter(
            "logship_shipper_bytes_lost",
            "Bytes of log files that could not be read, by reason (each case is also logged with path and range)",
            ["reason"],
            registry=r,
        )
        self.files_lost = Counter(
            "logship_shipper_files_lost", "Files with bytes that could not be read, by reason", ["reason"], registry=r
        )
        self.deleted_bytes_held = Gauge(
            "logship_shipper_deleted_bytes_held",
            "Disk bytes of deleted files still held open to be read to the end (cap: max_deleted_bytes_held)",
            registry=r,
        )
        self.files_waiting = Gauge(
            "logship_shipper_files_waiting",
            "Files registered but not held open because max_open_files was reached",
            registry=r,
        )
        self.output_connected = Gauge(
            "logship_shipper_output_connected", "1 while connected to an aggregator", registry=r
        )
        self.output_connections = Gauge(
            "logship_shipper_output_connections",
            "Aggregator connections open now (one per resolved endpoint with loadbalance)",
            registry=r,
        )
        self.output_connects = Counter(
            "logship_shipper_output_connects",
            "Aggregator connections opened (failures, idle closes and each output.ttl add one)",
            registry=r,
        )

        for reason in LOSS_REASONS:  # every series exists from the start, at 0
            self.bytes_lost.labels(reason)
            self.files_lost.labels(reason)

    def lost(self, reason: str, nbytes: int) -> None:
        self.bytes_lost.labels(reason).inc(max(0, nbytes))
        self.files_lost.labels(reason).inc()

    def watch_files(self, files: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self.registry.register(_BehindCollector(files))
