"""The OpenSearch node of the demo: reuse one that answers, else start `scripts/opensearch.sh --name demo`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from logship.demo.pipeline import REPO, http_get

SCRIPT = REPO / "scripts" / "opensearch.sh"


class DemoNode:
    """Remembers whether it started the node, so only a node it started is stopped."""

    def __init__(self, name: str, port: int, url: str | None = None) -> None:
        self.name = name
        self.port = port
        self.url = url.rstrip("/") if url else ""
        self.started = False

    def _script(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args, "--name", self.name], stdout=subprocess.PIPE, stderr=None, text=True, check=False
        )

    def ensure(self, stop: threading.Event | None = None) -> str:
        if self.url:
            try:
                status, _ = http_get(self.url, timeout=5)
            except OSError as exc:
                raise RuntimeError(f"OpenSearch at {self.url} does not answer ({exc}); unset OPENSEARCH_URL") from None
            if status != 200:
                raise RuntimeError(f"OpenSearch at {self.url} answered {status}; unset OPENSEARCH_URL")
            print(f"demo: using the OpenSearch node at {self.url}", file=sys.stderr)
            return self.url
        if self._script("status").returncode == 0:
            self.url = self._script("url").stdout.strip()
            print(f"demo: reusing the running OpenSearch instance '{self.name}' at {self.url}", file=sys.stderr)
            return self.url
        print(
            f"demo: starting OpenSearch '{self.name}' on port {self.port} (the first run downloads it, ~1-2 min)",
            file=sys.stderr,
        )
        self.started = True  # before the call: an interrupted start must still be stopped
        # its own session: a Ctrl-C in the terminal must not reach the node (it would shut down mid-demo)
        proc = subprocess.Popen(
            [str(SCRIPT), "start", "--name", self.name, "--port", str(self.port), "--fresh"],
            stdout=subprocess.PIPE, stderr=None, text=True, start_new_session=True,
        )  # fmt: skip
        while proc.poll() is None:
            if stop is not None and stop.is_set():
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
                raise KeyboardInterrupt
            time.sleep(0.2)
        out = proc.stdout.read() if proc.stdout else ""
        if proc.returncode != 0 or not out.strip():
            raise RuntimeError("scripts/opensearch.sh could not start OpenSearch (see the messages above)")
        self.url = out.strip().splitlines()[-1]
        return self.url

    def stop(self) -> None:
        if self.started:
            print(f"demo: stopping OpenSearch '{self.name}'", file=sys.stderr)
            self._script("stop")
            self.started = False
