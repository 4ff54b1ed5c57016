"""A real 3-node OpenSearch 2.19 cluster on loopback for the cluster tests (scripts/opensearch.sh --cluster).

The three nodes (512 MiB heap each) are started together, fresh, once per session, and stopped at its
end. HTTP ports are LOGSHIP_TEST_CLUSTER_PORT (default 9260) and the next two; transport ports are
those + 100. Every node is cluster-manager eligible and holds data, so killing or pausing one leaves a
quorum. Their write thread pool is one thread with a short queue (LOGSHIP_TEST_CLUSTER_WRITE_QUEUE,
default 4): a few concurrent bulks already get `429 es_rejected_execution_exception`, the push-back a
busy production cluster gives; every test here must come out exact through it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from logship.demo import search
from tests.faults.rig import Rig

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "opensearch.sh"
BASE_PORT = int(os.environ.get("LOGSHIP_TEST_CLUSTER_PORT", "9260"))
WRITE_QUEUE = int(os.environ.get("LOGSHIP_TEST_CLUSTER_WRITE_QUEUE", "4"))


def _script(*args: str) -> str:
    proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"opensearch.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


def http(url: str, method: str = "GET", body: Any = None, timeout: float = 30.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


@dataclass
class Cluster:
    base_port: int
    size: int = 3
    cluster_name: str = field(init=False)

    def __post_init__(self) -> None:
        self.cluster_name = f"logship-cluster-{self.base_port}"

    @property
    def names(self) -> list[str]:
        return [f"cluster-{self.base_port}-{i}" for i in range(self.size)]

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.base_port + i}" for i in range(self.size)]

    def url_of(self, name: str) -> str:
        return self.urls[self.names.index(name)]

    def _start_args(self, i: int) -> list[str]:
        return [
            "start",
            "--name",
            self.names[i],
            "--port",
            str(self.base_port + i),
            "--cluster",
            self.cluster_name,
            "--seeds",
            ",".join(str(self.base_port + j) for j in range(self.size)),
            "--managers",
            ",".join(self.names),
            "-E",
            "thread_pool.write.size=1",
            "-E",
            f"thread_pool.write.queue_size={WRITE_QUEUE}",
        ]

    def start_all(self) -> None:
        with ThreadPoolExecutor(self.size) as pool:
            list(pool.map(lambda i: _script(*self._start_args(i), "--fresh"), range(self.size)))
        self.wait_health("green", nodes=self.size)

    def start(self, name: str) -> None:
        """Start one node again on its existing data (it rejoins the cluster)."""
        _script(*self._start_args(self.names.index(name)))

    def stop_all(self) -> None:
        for name in self.names:
            subprocess.run([str(SCRIPT), "stop", "--name", name], capture_output=True, timeout=120)

    def pid(self, name: str) -> int:
        return int(_script("pid", "--name", name))

    def live_url(self, avoid: str | None = None) -> str:
        """The URL of a node other than `avoid` (for the test's own queries during a fault)."""
        return next(u for n, u in zip(self.names, self.urls, strict=True) if n != avoid)

    def elected_manager(self) -> str:
        rows = http(f"{self.urls[0]}/_cat/cluster_manager?format=json")
        return str(rows[0]["node"])

    def wait_health(
        self, status: str, nodes: int, timeout: float = 180.0, url: str | None = None, index: str = ""
    ) -> dict[str, Any]:
        """Wait for the cluster (or only `index`, a pattern) to reach `status` with `nodes` nodes."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for u in [url] if url else self.urls:
                try:
                    last = http(
                        f"{u}/_cluster/health/{index}?wait_for_status={status}&wait_for_nodes={nodes}&timeout=5s",
                        timeout=15,
                    )
                except OSError as exc:
                    last = repr(exc)
                    continue
                if isinstance(last, dict) and not last.get("timed_out"):
                    return last
            time.sleep(1)
        raise AssertionError(f"cluster not {status} with {nodes} nodes within {timeout:.0f}s: {last}")


@pytest.fixture(scope="session")
def opensearch_cluster() -> Iterator[Cluster]:
    cluster = Cluster(BASE_PORT)
    try:
        cluster.start_all()
    except Exception as exc:
        cluster.stop_all()
        pytest.fail(f"the 3-node OpenSearch cluster did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def cluster_rig(tmp_path: Path, opensearch_cluster: Cluster, index_prefix_cluster: str) -> Iterator[Rig]:
    """A fault rig whose aggregator knows all three nodes, with an index template of 1 replica."""
    r = ClusterRig(tmp_path, opensearch_cluster, index_prefix_cluster)
    yield r
    r.close()
    for path in (f"/{index_prefix_cluster}*", f"/_index_template/{index_prefix_cluster}logstash-logs"):
        for url in opensearch_cluster.urls:
            try:
                search.request(url + path, "DELETE")
                break
            except (search.SearchError, OSError):
                continue


@pytest.fixture
def index_prefix_cluster() -> str:
    return f"c-{uuid.uuid4().hex[:10]}-"


class ClusterRig(Rig):
    def __init__(self, tmp: Path, cluster: Cluster, prefix: str) -> None:
        super().__init__(tmp, cluster.urls[0], prefix)
        self.cluster = cluster

    def aggregator_config(self, **over: Any) -> Path:
        base: dict[str, Any] = {
            "opensearch": {"hosts": self.cluster.urls, "timeout": "10s"},
            "template": {"name": self.prefix + "logstash-logs", "replicas": 1},
        }
        for k, v in over.items():
            base[k] = {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        return super().aggregator_config(**base)

    def diagnostics(self) -> str:
        """The processes' logs and metrics, and what each node says of the cluster and its shards."""
        out = [super().diagnostics()]
        for url in self.cluster.urls:
            try:
                health = http(f"{url}/_cluster/health", timeout=5)
                shards = http(
                    f"{url}/_cat/shards/{self.prefix}*?format=json&h=index,shard,prirep,state,node", timeout=5
                )
                out.append(f"--- {url}: {health}\n{shards}")
            except OSError as exc:
                out.append(f"--- {url}: {exc!r}")
        return "\n".join(out)

    def request(self, path: str, method: str = "GET", body: Any = None) -> Any:
        # the node a fault hits may be dead or paused: ask the others (short timeout, then the next)
        last: OSError | None = None
        urls = sorted(self.cluster.urls, key=lambda u: u != self.url)
        for url in urls:
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(url + path, data=data, method=method)
            req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError:
                raise
            except OSError as exc:
                last = exc
        assert last is not None
        raise last
