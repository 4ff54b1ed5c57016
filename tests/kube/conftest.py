"""A real single-node Kubernetes for the chart: `scripts/kube.sh up` builds (once, cached outside the
clone) and starts kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, etcd and
containerd inside a network namespace of their own, with an OpenSearch bound to the node address in
that namespace; the session ends with `scripts/kube.sh down`, also after a failure.

Everything here talks to the cluster through `scripts/kube.sh exec` (kubectl, helm, curl inside the
namespace). LOGSHIP_KUBE_NAME names the cluster (default `pytest`), so parallel sessions on one
machine do not share one.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "scripts" / "kube.sh"
CHART = ROOT / "deploy" / "helm" / "logship"
NODE_IP = "10.250.0.1"
OPENSEARCH = f"http://{NODE_IP}:9200"
RELEASE = "logship"
NAMESPACE = "kube-system"
SIDECAR_NAMESPACE = "shop"
APPS_NAMESPACE = "e2e-apps"
BUSYBOX = "localhost/logship-kube/busybox:1"


def kube_name() -> str:
    return os.environ.get("LOGSHIP_KUBE_NAME", "pytest")


def _env() -> dict[str, str]:
    return {**os.environ, "LOGSHIP_KUBE_NAME": kube_name()}


def run(
    *args: str, timeout: float = 300, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A command inside the cluster's network namespace (kubectl, helm, curl ...)."""
    proc = subprocess.run(
        ["bash", str(KUBE), "exec", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        input=stdin,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def kubectl(*args: str, timeout: float = 300, check: bool = True, stdin: str | None = None) -> str:
    return run("kubectl", *args, timeout=timeout, check=check, stdin=stdin).stdout


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def apply(manifest: str) -> None:
    kubectl("apply", "-f", "-", stdin=manifest)


def helm(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("helm", *args, timeout=timeout, check=check)


def opensearch(method: str, path: str, body: Any = None) -> Any:
    args = ["curl", "-sS", "--fail-with-body", "-X", method, f"{OPENSEARCH}{path}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    proc = run(*args, timeout=120, stdin=None if body is None else json.dumps(body))
    return json.loads(proc.stdout)


def search_all(index: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Every hit (with _version) of `query` in `index`, after a refresh (scrolled: no 10,000 cap)."""
    opensearch("POST", f"/{urllib.parse.quote(index)}/_refresh?ignore_unavailable=true&allow_no_indices=true")
    body = {
        "query": query,
        "size": 5000,
        "version": True,
        "track_total_hits": True,
        "_source": ["message", "stream", "tags", "kubernetes", "log", "container"],
    }
    found = opensearch(
        "POST", f"/{urllib.parse.quote(index)}/_search?scroll=1m&ignore_unavailable=true&allow_no_indices=true", body
    )
    total = found["hits"]["total"]["value"]
    hits: list[dict[str, Any]] = list(found["hits"]["hits"])
    scroll_id = found.get("_scroll_id")
    while len(hits) < total and scroll_id:
        page = opensearch("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": scroll_id})
        if not page["hits"]["hits"]:
            break
        hits += page["hits"]["hits"]
        scroll_id = page.get("_scroll_id")
    if scroll_id:
        opensearch("DELETE", "/_search/scroll", {"scroll_id": scroll_id})
    assert len(hits) == total, f"fetched {len(hits)} of {total} hits"
    return hits


def pod_docs(index: str, namespace: str, pod: str) -> list[dict[str, Any]]:
    return search_all(
        index,
        {"bool": {"filter": [{"term": {"kubernetes.namespace": namespace}}, {"term": {"kubernetes.pod.name": pod}}]}},
    )


def wait_for_count(
    fetch: Callable[[], list[dict[str, Any]]], expected: int, timeout: float = 180, settle: float = 5
) -> list[dict[str, Any]]:
    """Poll until exactly `expected` documents are there and stay so for `settle` seconds."""
    deadline = time.monotonic() + timeout
    docs = fetch()
    while time.monotonic() < deadline:
        if len(docs) > expected:
            break
        if len(docs) == expected:
            time.sleep(settle)
            docs = fetch()
            if len(docs) == expected:
                return docs
        time.sleep(2)
        docs = fetch()
    raise AssertionError(f"expected exactly {expected} documents, found {len(docs)}")


def node_name() -> str:
    return f"logship-{kube_name()}"


def pod_logs_dir() -> Path:
    return Path(f"/var/log/logship-kube/{kube_name()}/pods")


@dataclass
class Cluster:
    kubeconfig: str
    up_seconds: float


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The running cluster (started here and stopped at the end, or reused if already up)."""
    already = subprocess.run(["bash", str(KUBE), "status"], capture_output=True, text=True, env=_env(), timeout=120)
    started = time.monotonic()
    if already.returncode != 0:
        proc = subprocess.run(["bash", str(KUBE), "up"], capture_output=True, text=True, env=_env(), timeout=3600)
        if proc.returncode != 0:
            pytest.fail(f"scripts/kube.sh up failed:\n{proc.stderr[-6000:]}")
        kubeconfig = proc.stdout.strip().splitlines()[-1]
    else:
        kubeconfig = ""
    try:
        yield Cluster(kubeconfig, time.monotonic() - started)
    finally:
        if already.returncode != 0 and not os.environ.get("LOGSHIP_KUBE_KEEP"):
            down = subprocess.run(["bash", str(KUBE), "down"], capture_output=True, text=True, env=_env(), timeout=600)
            assert down.returncode == 0, down.stderr[-3000:]
            assert_nothing_left()


def assert_nothing_left() -> None:
    """After `kube.sh down`: no network namespace, process, mount, cgroup or pod log of the cluster."""
    name = kube_name()
    assert not Path(f"/run/netns/logship-kube-{name}").exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert f"/kube/instances/{name}/" not in mounts and f"/run/logship-kube/{name}/" not in mounts
    assert not list(Path("/sys/fs/cgroup").glob(f"*/logship-kube-{name}"))
    assert not Path(f"/var/log/logship-kube/{name}").exists()
    pattern = f"/run/logship-kube/{name}/|/kube/instances/{name}/|instances/kube-{name}/"
    deadline = time.monotonic() + 15  # a killed process may take a moment to be gone
    while True:
        own = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, timeout=30)
        if not own.stdout.strip():
            return
        assert time.monotonic() < deadline, f"left running: {own.stdout}"
        time.sleep(1)
