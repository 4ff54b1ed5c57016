"""Prometheus metrics of the shipper, in their own registry (served by logship.ops.OpsServer)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _BehindCollector(Collector):
    """Bytes not yet read per open file, computed at scrape time (an fstat per file)."""

    def __init__(self, files: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._files = files

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "logship_shipper_file_bytes_behind", "Bytes written to a file but not read yet", labels=["path"]
        )
        for path, behind in self._files():
            g.add_metric([path], behind)
        yield g


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
