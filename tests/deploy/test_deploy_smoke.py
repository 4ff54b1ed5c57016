"""The chart's configs run: the aggregator and the shipper started with the ConfigMaps `helm template`
renders (values pointing hosts, ports and writable paths at this machine, exactly as an operator's
values file would), answering the probes the manifests declare, passing the `logship test output`
checks the README tells operators to run, and carrying one container log line into OpenSearch."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import Rendered, container
from tests.deploy.test_deploy_configs import logship_cli

pytestmark = pytest.mark.integration

POD_LOG = "web-7d9c8b7f5-x2k4q_shop_nginx-" + "a1" * 32 + ".log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails}")


def probe_url(ctr: dict[str, Any], probe: str) -> str:
    get = ctr[probe]["httpGet"]
    port = next(p["containerPort"] for p in ctr["ports"] if p["name"] == get["port"])
    return f"http://127.0.0.1:{port}{get['path']}"


class Procs:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, name: str, config: Path, env: dict[str, str]) -> None:
        log = self.tmp / f"{name}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.procs.append(
                subprocess.Popen(
                    [*logship_cli(), name, "-c", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
                )
            )

    def stop(self) -> list[int | None]:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=40))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait(timeout=10))
        return codes


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop()


def test_chart_configs_run_and_ship(
    render: Callable[..., Rendered], opensearch_url: str, index_prefix: str, tmp_path: Path, procs: Procs
) -> None:
    lj, agg_http, ship_http = free_port(), free_port(), free_port()
    logs_dir = tmp_path / "containers"
    logs_dir.mkdir()
    values = {
        "opensearch": {"hosts": [opensearch_url], "auth": {"enabled": False}},
        "aggregator": {
            "port": lj,
            "metricsPort": agg_http,
            "config": {
                "routes": [
                    {"tag": "containers", "index": f"{index_prefix}containers-%{{+YYYY.MM.dd}}"},
                    {"tag": "app", "index": f"{index_prefix}app-%{{+YYYY.MM.dd}}"},
                ],
                "default_index": f"{index_prefix}unrouted",
                "template": {"install": False},  # the shared node's templates belong to other tests
                "dead_letter": {"path": str(tmp_path / "dead-letter.ndjson")},
            },
        },
        "shipper": {
            "port": ship_http,
            "outputHosts": [f"127.0.0.1:{lj}"],
            "config": {
                "inputs": [{"type": "containers", "paths": [str(logs_dir / "*.log")], "tags": ["containers"]}],
                "registry": {"path": str(tmp_path / "registry.json")},
            },
        },
    }
    values_path = tmp_path / "local-values.yaml"
    values_path.write_text(yaml.safe_dump(values))
    r = render("default", "-f", str(values_path))

    configs = {}
    for side in ("shipper", "aggregator"):
        configs[side] = tmp_path / f"{side}.yml"
        configs[side].write_text(r.get("ConfigMap", f"logship-{side}")["data"]["logship.yml"])
    env = {"PATH": "/usr/bin:/bin", "NODE_NAME": "ip-10-0-1-23"}

    # The shipper first, as a DaemonSet pod may start before any aggregator: it must wait, not fail.
    (logs_dir / POD_LOG).write_text("2026-11-26T21:00:00.123456789Z stdout F hello from the chart\n")
    procs.start("shipper", configs["shipper"], env)
    ship = container(r.get("DaemonSet", "logship-shipper"), "shipper")
    wait_for(lambda: http_status(probe_url(ship, "livenessProbe")) == 200, 30, "shipper /healthz", procs.logs)
    time.sleep(2)
    assert procs.procs[0].poll() is None, "the shipper exited while no aggregator was up"

    procs.start("aggregator", configs["aggregator"], env)
    agg = container(r.get("Deployment", "logship-aggregator"), "aggregator")
    for probe in ("livenessProbe", "readinessProbe"):
        wait_for(lambda p=probe: http_status(probe_url(agg, p)) == 200, 60, f"aggregator {probe}", procs.logs)
    wait_for(lambda: http_status(probe_url(ship, "readinessProbe")) == 200, 30, "shipper /readyz", procs.logs)

    def indexed() -> list[dict[str, Any]]:
        url = f"{opensearch_url}/{index_prefix}containers-*/_search?q=message:chart"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                hits: list[dict[str, Any]] = json.load(resp)["hits"]["hits"]
                return hits
        except OSError:
            return []

    wait_for(lambda: len(indexed()) == 1, 60, "the log line in OpenSearch", procs.logs)
    (hit,) = indexed()
    assert hit["_index"] == f"{index_prefix}containers-2026.11.26"
    doc = hit["_source"]
    assert doc["message"] == "hello from the chart"
    assert doc["kubernetes"]["pod"]["name"] == "web-7d9c8b7f5-x2k4q"
    assert doc["kubernetes"]["namespace"] == "shop"
    assert doc["tags"][0] == "containers"

    # The checks deploy/README.md tells operators to run inside the pods.
    for side in ("aggregator", "shipper"):
        out = subprocess.run(
            [*logship_cli(), "test", "output", "-c", str(configs[side])],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert out.returncode == 0, f"{side}: {out.stdout}{out.stderr}"

    assert procs.stop() == [0, 0]
