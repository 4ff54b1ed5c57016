"""The benchmark's own OpenSearch node, started with scripts/opensearch.sh on a private port.

It is separate from any shared node because case e pauses it (SIGSTOP). A node already running
under the same name is reused and left running; one this run started is stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import psutil

from benchmarks.procs import ROOT, runqueue_wait

SCRIPT = ROOT / "scripts" / "opensearch.sh"


class NodeError(RuntimeError):
    pass


class BenchNode:
    def __init__(self, name: str = "bench", port: int = 9230, heap: str = "1g") -> None:
        self.name = name
        self.port = port
        self.heap = heap
        self.url = f"http://127.0.0.1:{port}"
        self.started_here = False

    def _script(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args, "--name", self.name], capture_output=True, text=True, timeout=timeout
        )

    def running(self) -> bool:
        return self._script("status").returncode == 0

    def start(self) -> None:
        if self.running():
            self.url = self._script("url").stdout.strip() or self.url
            return
        out = self._script("start", "--port", str(self.port), "--heap", self.heap, timeout=400)
        if out.returncode != 0:
            raise NodeError(f"scripts/opensearch.sh start --name {self.name} failed:\n{out.stderr[-2000:]}")
        self.url = out.stdout.strip().splitlines()[-1]
        self.started_here = True

    def stop(self) -> None:
        if self.started_here:
            self.resume()
            self._script("stop")

    def pid(self) -> int:
        out = self._script("pid")
        if out.returncode != 0 or not out.stdout.strip().isdigit():
            raise NodeError(f"no pid for OpenSearch instance {self.name}: {out.stderr.strip()}")
        return int(out.stdout.strip())

    def pin(self, cpus: set[int]) -> None:
        """Hold every thread of the node's JVM to `cpus` (threads it starts later inherit it)."""
        for thread in psutil.Process(self.pid()).threads():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(thread.id, cpus)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the node's JVM has used so far."""
        t = psutil.Process(self.pid()).cpu_times()
        return float(t.user + t.system)

    def cpu_and_wait(self) -> tuple[float, float]:
        """(CPU seconds, seconds its threads waited for a core) so far."""
        return self.cpu_seconds(), runqueue_wait(self.pid())

    def pause(self) -> None:
        os.kill(self.pid(), signal.SIGSTOP)

    def resume(self) -> None:
        try:
            os.kill(self.pid(), signal.SIGCONT)
        except (NodeError, ProcessLookupError):
            pass

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method in ("DELETE", "GET"):
                return None
            raise NodeError(f"{method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from exc
        return json.loads(raw) if raw else None

    def version(self) -> str:
        return str(self.request("GET", "/")["version"]["number"])

    def delete(self, pattern: str) -> None:
        self.request("DELETE", f"/{pattern}?expand_wildcards=all&ignore_unavailable=true")

    def count(self, pattern: str, refresh: bool = False, attempts: int = 20) -> int:
        """Documents searchable in `pattern`. A shard still starting (an index created a moment ago)
        answers 503 "all shards failed": that is retried, not an error."""
        for attempt in range(attempts):
            try:
                if refresh:
                    self.request("POST", f"/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true")
                out = self.request("GET", f"/{pattern}/_count?ignore_unavailable=true&allow_no_indices=true")
                return int(out["count"]) if out else 0
            except NodeError as exc:
                if "HTTP 503" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.25)
        return 0

    def wait_count(self, pattern: str, expected: int, timeout: float) -> tuple[int, float]:
        """Poll until `expected` documents are searchable; returns (count, seconds waited)."""
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < timeout:
            n = self.count(pattern)
            if n >= expected:
                break
            time.sleep(0.25)
        return n, time.monotonic() - start
