"""The OpenSearch node of the demo: reuse one that answers, else start `scripts/opensearch.sh --name demo`."""

from __future__ import annotations

import subprocess
import sys

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

    def ensure(self) -> str:
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
        proc = subprocess.run(
            [str(SCRIPT), "start", "--name", self.name, "--port", str(self.port), "--fresh"],
            stdout=subprocess.PIPE, stderr=None, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError("scripts/opensearch.sh could not start OpenSearch (see the messages above)")
        self.url = proc.stdout.strip().splitlines()[-1]
        return self.url

    def stop(self) -> None:
        if self.started:
            print(f"demo: stopping OpenSearch '{self.name}'", file=sys.stderr)
            self._script("stop")
            self.started = False
