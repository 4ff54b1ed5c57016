"""End-to-end harness: the real `logship aggregator` and `logship shipper` processes, configured by
`deploy/local/*.yml`, with ports picked free at run time and indices under the test's `index_prefix`.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from logship.demo import search
from logship.demo.pipeline import LOCAL_CONFIGS, Service, free_port, local_env


@dataclass
class Pipeline:
    url: str
    prefix: str
    root: Path
    env: dict[str, str]
    aggregator: Service
    shipper: Service
    started: list[Service] = field(default_factory=list)

    @property
    def pattern(self) -> str:
        return f"{self.prefix}logstash-logs-*"

    def start_aggregator(self) -> None:
        self.started.append(self.aggregator)
        self.aggregator.start()
        self.aggregator.wait_ready(60)

    def start_shipper(self) -> None:
        self.started.append(self.shipper)
        self.shipper.start()
        self.shipper.wait_ready(60)

    def start(self) -> None:
        self.start_aggregator()
        self.start_shipper()

    def counts(self) -> dict[str, int]:
        search.refresh(self.url, self.pattern)
        return search.counts_per_index(self.url, self.pattern)

    def wait_indexed(self, expected: int, timeout: float = 60.0) -> bool:
        """Poll until `expected` documents are searchable (or more: duplicates fail the comparison)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in self.started:
                s.check_alive()
            if sum(self.counts().values()) >= expected:
                return True
            time.sleep(0.5)
        return False

    def diagnostics(self) -> str:
        return (
            f"indices: {self.counts()}\n"
            f"shipper metrics: {_interesting(self.shipper.metrics())}\n"
            f"aggregator metrics: {_interesting(self.aggregator.metrics())}\n"
            f"shipper log ({self.shipper.log_path}):\n{self.shipper.log_tail(25)}\n"
            f"aggregator log:\n{self.aggregator.log_tail(10)}"
        )

    def stop(self) -> dict[str, int | None]:
        """Graceful stop, shipper first; returns the exit codes."""
        codes = {s.side: s.stop(timeout=20) for s in reversed(self.started)}
        self.started.clear()
        return codes

    def documents(self) -> list[dict[str, Any]]:
        search.refresh(self.url, self.pattern)
        return list(search.all_documents(self.url, self.pattern))


def _interesting(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k.startswith("logship_") and not k.endswith(("_created", "_bucket"))}


@pytest.fixture
def pipeline(opensearch_url: str, index_prefix: str, tmp_path: Path) -> Iterator[Pipeline]:
    root, data, logs = tmp_path / "node", tmp_path / "data", tmp_path / "logs"
    for d in (root, data, logs):
        d.mkdir()
    env = local_env(
        root=root, data=data, opensearch_url=opensearch_url, lumberjack_port=free_port(),
        shipper_http_port=free_port(), aggregator_http_port=free_port(), index_prefix=index_prefix,
        node_name="e2e-node",
    )  # fmt: skip
    env["LOGSHIP_SCAN_INTERVAL"] = "500ms"
    env["LOGSHIP_MULTILINE_TIMEOUT"] = "500ms"
    p = Pipeline(
        url=opensearch_url,
        prefix=index_prefix,
        root=root,
        env=env,
        aggregator=Service(
            "aggregator", LOCAL_CONFIGS / "aggregator.yml", env, int(env["AGGREGATOR_HTTP_PORT"]), logs / "agg.log"
        ),
        shipper=Service(
            "shipper", LOCAL_CONFIGS / "shipper.yml", env, int(env["SHIPPER_HTTP_PORT"]), logs / "ship.log"
        ),
    )
    try:
        yield p
    finally:
        for s in (p.shipper, p.aggregator):
            s.stop(timeout=10)
        req = urllib.request.Request(f"{opensearch_url}/_index_template/{index_prefix}logstash-logs", method="DELETE")
        try:
            urllib.request.urlopen(req, timeout=30).read()
        except OSError:
            pass  # not installed (the aggregator never got that far)
