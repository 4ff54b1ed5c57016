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
        self.output_connected = Gauge(
            "logship_shipper_output_connected", "1 while connected to an aggregator", registry=r
        )

    def watch_files(self, files: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self.registry.register(_BehindCollector(files))
