"""The benchmark's own 3-node OpenSearch cluster on loopback (scripts/opensearch.sh --cluster).

Started fresh by the case that needs it and stopped afterwards; HTTP ports LOGSHIP_BENCH_CLUSTER_PORT
(default 9270) and the next two, transport ports those + 100. Each node is cluster-manager eligible
and holds data, with the heap given (512 MiB by default, as the cluster tests).
"""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import psutil

from benchmarks.node import SCRIPT, BenchNode, NodeError


class BenchCluster:
    def __init__(self, base_port: int | None = None, size: int = 3, heap: str = "512m") -> None:
        self.base_port = base_port or int(os.environ.get("LOGSHIP_BENCH_CLUSTER_PORT", "9270"))
        self.size = size
        self.heap = heap
        self.names = [f"bench-cluster-{self.base_port}-{i}" for i in range(size)]
        self.urls = [f"http://127.0.0.1:{self.base_port + i}" for i in range(size)]
        # queries (count, delete) go to the first node
        self.query = BenchNode(self.names[0], self.base_port)
        self.url = self.urls[0]

    def _start_one(self, i: int) -> None:
        args = [
            str(SCRIPT), "start", "--name", self.names[i], "--port", str(self.base_port + i), "--heap", self.heap,
            "--fresh", "--cluster", f"logship-bench-{self.base_port}",
            "--seeds", ",".join(str(self.base_port + j) for j in range(self.size)),
            "--managers", ",".join(self.names),
        ]  # fmt: skip
        out = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise NodeError(f"scripts/opensearch.sh start --name {self.names[i]} failed:\n{out.stderr[-2000:]}")

    def start(self) -> None:
        try:
            with ThreadPoolExecutor(self.size) as pool:
                list(pool.map(self._start_one, range(self.size)))
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                health = self.query.request("GET", f"/_cluster/health?wait_for_nodes={self.size}&timeout=5s")
                if health and not health.get("timed_out") and health.get("status") == "green":
                    return
                time.sleep(1)
            raise NodeError(f"the {self.size}-node cluster did not turn green within 180 s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in self.names:
            subprocess.run([str(SCRIPT), "stop", "--name", name], capture_output=True, timeout=120)

    def version(self) -> str:
        return self.query.version()

    def count(self, pattern: str, refresh: bool = False) -> int:
        return self.query.count(pattern, refresh=refresh)

    def delete(self, pattern: str) -> None:
        self.query.delete(pattern)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the three JVMs so far."""
        total = 0.0
        for name in self.names:
            out = subprocess.run([str(SCRIPT), "pid", "--name", name], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip().isdigit():
                t = psutil.Process(int(out.stdout.strip())).cpu_times()
                total += t.user + t.system
        return total
