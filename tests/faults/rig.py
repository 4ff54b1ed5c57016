"""A fault rig: real `logship aggregator` and `logship shipper` processes with configs written per test,
the generator writing an EKS-node-shaped tree, and an exact comparison with what reached OpenSearch.

Configs are written here (not taken from deploy/local) because fault tests change what the demo
never does: TLS, credentials, a proxy between the two sides, a registry on a tiny filesystem.
Durations come from the environment so CI runs short and a soak runs long:

  LOGSHIP_FAULT_OUTAGE_S   length of every outage (no aggregator, OpenSearch paused/stopped); default 10
  LOGSHIP_FAULT_RUN_S      how long the generator writes in the kill/cut/storm tests; default 12
  LOGSHIP_FAULT_RATE       events per second the generator writes; default 400
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from logship.demo.pipeline import Service, free_port
from logship.demo.verify import Report, compare
from logship.loggen import GenConfig, Generator

OUTAGE_S = float(os.environ.get("LOGSHIP_FAULT_OUTAGE_S", "10"))
RUN_S = float(os.environ.get("LOGSHIP_FAULT_RUN_S", "12"))
RATE = float(os.environ.get("LOGSHIP_FAULT_RATE", "400"))
# the soak stretches the wait for the last documents with the outage
SETTLE_S = 90.0 + 2 * OUTAGE_S
APP_TIMESTAMP = r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Rig:
    def __init__(self, tmp: Path, opensearch_url: str, prefix: str) -> None:
        self.tmp = tmp
        self.url = opensearch_url
        self.prefix = prefix
        self.root = tmp / "node"
        self.data = tmp / "data"
        self.logs = tmp / "logs"
        for d in (self.root, self.data, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.lj_port = free_port()
        self.agg_http = free_port()
        self.ship_http = free_port()
        self.registry_path = self.data / "registry.json"
        self.aggregator: Service | None = None
        self.shipper: Service | None = None
        self._gen: threading.Thread | None = None
        self._manifest: dict[str, Any] | None = None
        self._gen_error: BaseException | None = None
        self._auth_header = ""
        self._ssl: ssl.SSLContext | None = None

    @property
    def pattern(self) -> str:
        return f"{self.prefix}logstash-logs-*"

    # -- configs -----------------------------------------------------------------------------------------
    def aggregator_config(self, **over: Any) -> Path:
        p = self.prefix
        cfg: dict[str, Any] = {
            "listen": {"host": "127.0.0.1", "port": self.lj_port, "idle_timeout": "60s", "keepalive_interval": "1s"},
            "routes": [
                {"tag": "containers", "index": p + "logstash-logs-containers-%{+YYYY.MM.dd}"},
                {"tag": "app", "index": p + "logstash-logs-app-%{+YYYY.MM.dd}"},
            ],
            "default_index": p + "logstash-logs-unrouted-%{+YYYY.MM.dd}",
            # prefixed too, or the test's template would claim logstash-logs-* beside other tests' templates
            "family_index": p + "logstash-logs-{family}-%{+YYYY.MM.dd}",
            "opensearch": {"hosts": [self.url], "timeout": "10s"},
            "bulk": {"max_delay": "200ms", "backoff": {"initial": "200ms", "max": "2s"}},
            "template": {"name": p + "logstash-logs", "replicas": 0},
            "dead_letter": {"path": str(self.data / "dead-letter.ndjson")},
            "http": {"host": "127.0.0.1", "port": self.agg_http},
            "shutdown_timeout": "10s",
        }
        path = self.tmp / "aggregator.yml"
        path.write_text(yaml.safe_dump({"aggregator": deep_merge(cfg, over)}, sort_keys=False))
        return path

    def shipper_config(self, hosts: list[str] | None = None, **over: Any) -> Path:
        cfg: dict[str, Any] = {
            "name": "fault-node",
            "inputs": [
                {"type": "containers", "paths": [str(self.root / "var/log/containers/*.log")]},
                {
                    "type": "app",
                    "paths": [str(self.root / "app/logs/log-*.log")],
                    "multiline": {"start_pattern": r"^\d{4}-\d{2}-\d{2}[ T]", "max_lines": 500, "timeout": "500ms"},
                    "timestamp": {
                        "pattern": APP_TIMESTAMP,
                        "timezone": "UTC",
                    },
                },
            ],
            "scan_interval": "300ms",
            "registry": {"path": str(self.registry_path), "flush_interval": "200ms"},
            "output": {
                "hosts": hosts or [f"127.0.0.1:{self.lj_port}"],
                "timeout": "10s",
                "backoff": {"initial": "200ms", "max": "2s"},
            },
            "http": {"host": "127.0.0.1", "port": self.ship_http},
            "shutdown_timeout": "10s",
        }
        path = self.tmp / "shipper.yml"
        path.write_text(yaml.safe_dump({"shipper": deep_merge(cfg, over)}, sort_keys=False))
        return path

    # -- processes ---------------------------------------------------------------------------------------
    def start_aggregator(self, ready: bool = True, env: dict[str, str] | None = None, **over: Any) -> Service:
        if self.aggregator is None or over or env:
            cfg = self.aggregator_config(**over)
            self.aggregator = Service("aggregator", cfg, env or {}, self.agg_http, self.logs / "aggregator.log")
        self.aggregator.start()
        if ready:
            self.aggregator.wait_ready(60)
        return self.aggregator

    def start_shipper(self, ready: bool = True, hosts: list[str] | None = None, **over: Any) -> Service:
        if self.shipper is None or over or hosts:
            cfg = self.shipper_config(hosts, **over)
            self.shipper = Service("shipper", cfg, {}, self.ship_http, self.logs / "shipper.log")
        self.shipper.start()
        if ready:
            self.shipper.wait_ready(60)
        return self.shipper

    def close(self) -> None:
        for s in (self.shipper, self.aggregator):
            if s is not None:
                s.stop(timeout=10)
        if self._gen is not None:
            self._gen.join(timeout=60)

    # -- the generator -----------------------------------------------------------------------------------
    def generate(self, **kw: Any) -> None:
        """Start the generator in a thread (it paces itself); `manifest()` waits for it."""
        cfg = GenConfig(root=self.root, **{"rate": RATE, "duration": RUN_S, "pods": 4, "seed": 5, **kw})

        def run() -> None:
            try:
                self._manifest = Generator(cfg).run()
            except BaseException as exc:  # surfaced by manifest()
                self._gen_error = exc

        self._gen = threading.Thread(target=run, name="loggen", daemon=True)
        self._gen.start()

    def generating(self) -> bool:
        return self._gen is not None and self._gen.is_alive()

    def manifest(self) -> dict[str, Any]:
        assert self._gen is not None
        self._gen.join(timeout=RUN_S * 4 + 120)
        if self._gen_error is not None:
            raise self._gen_error
        assert self._manifest is not None, "generator did not finish"
        return self._manifest

    # -- OpenSearch --------------------------------------------------------------------------------------
    def use_credentials(self, username: str, password: str, ca_file: Path) -> None:
        """Query a secured node (HTTPS with this CA, basic auth) from the test side."""
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._auth_header = f"Basic {token}"
        self._ssl = ssl.create_default_context(cafile=str(ca_file))

    def request(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self._auth_header:
            req.add_header("Authorization", self._auth_header)
        with urllib.request.urlopen(req, timeout=30, context=self._ssl) as resp:
            return json.loads(resp.read() or b"null")

    def count(self) -> int:
        q = "ignore_unavailable=true&allow_no_indices=true"
        try:
            self.request(f"/{self.pattern}/_refresh?{q}", "POST")
            return int(self.request(f"/{self.pattern}/_count?{q}")["count"])
        except (OSError, ValueError, KeyError):
            return -1  # OpenSearch down or paused (by the test)

    def documents(self) -> list[dict[str, Any]]:
        q = "ignore_unavailable=true&allow_no_indices=true"
        self.request(f"/{self.pattern}/_refresh?{q}", "POST")
        body = {"size": 5000, "query": {"match_all": {}}, "sort": ["_doc"]}
        res = self.request(f"/{self.pattern}/_search?scroll=2m&{q}", "POST", body)
        out: list[dict[str, Any]] = []
        while hits := res.get("hits", {}).get("hits", []):
            out += [{"_index": h["_index"], "_id": h["_id"], **h["_source"]} for h in hits]
            res = self.request("/_search/scroll", "POST", {"scroll": "2m", "scroll_id": res["_scroll_id"]})
        return out

    def wait_all(self, manifest: dict[str, Any], timeout: float = SETTLE_S) -> Report:
        """Wait until OpenSearch holds as many documents as were written, let late duplicates land, compare."""
        expected = manifest["events"]
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            for s in (self.shipper, self.aggregator):
                if s is not None and s.proc is not None:
                    s.check_alive()
            n = self.count()
            if n >= expected:
                break
            time.sleep(0.5)
        time.sleep(1.5)  # a late duplicate would land now
        report = compare(manifest, self.documents(), self.prefix)
        if not report.ok:
            pytest.fail(f"{report.summary()}\n{self.diagnostics()}")
        return report

    def diagnostics(self) -> str:
        out = []
        for s in (self.shipper, self.aggregator):
            if s is not None:
                m = {k: v for k, v in s.metrics().items() if k.startswith("logship_") and not k.endswith("_created")}
                out.append(f"--- {s.side} metrics: {m}\n--- {s.side} log:\n{s.log_tail(40)}")
        return "\n".join(out)

    def log(self, side: str) -> str:
        return (self.logs / f"{side}.log").read_text("utf-8", "replace") if (self.logs / f"{side}.log").exists() else ""


def rss_mib(service: Service) -> float:
    assert service.proc is not None
    return float(psutil.Process(service.proc.pid).memory_info().rss) / (1 << 20)


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    poll: float = 0.2,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll `predicate` until it holds; on timeout fail with `detail()` (logs, metrics) when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}" + (f"\n{detail()}" if detail else ""))
