"""Fixtures for the deploy checks: a real helm (built once by scripts/tools.sh, cached outside the
clone), the chart rendered with its default values and with each `ci/*.yaml` values file, and helpers
to find objects and containers in the rendered manifests.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "logship"
TOOLS = ROOT / "scripts" / "tools.sh"
RELEASE = "logship"
NAMESPACE = "kube-system"
# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) is what it is rendered for.
KUBE_VERSION = "1.29.0"

CI_VALUES = sorted(CHART.glob("ci/*.yaml"))
SCENARIOS = ["default", *(p.stem for p in CI_VALUES)]


def fullname(scenario: str) -> str:
    """Name prefix of the release's objects (custom-secret-values sets fullnameOverride)."""
    return "logs" if scenario == "custom-secret-values" else RELEASE


def values_file(scenario: str) -> Path | None:
    return None if scenario == "default" else CHART / "ci" / f"{scenario}.yaml"


@dataclass
class Rendered:
    """The documents `helm template` produced for one scenario."""

    scenario: str
    docs: list[dict[str, Any]]
    text: str = field(repr=False)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.all(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.scenario}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def maybe(self, kind: str, name: str) -> dict[str, Any] | None:
        found = [d for d in self.all(kind) if d["metadata"]["name"] == name]
        return found[0] if found else None

    def workloads(self) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] in ("DaemonSet", "Deployment", "StatefulSet", "Job")]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container that runs for the pod's lifetime (regular ones and native sidecars)."""
    spec = pod_spec(workload)
    sidecars = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    return [*spec["containers"], *sidecars]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in containers(workload) if c["name"] == name]
    assert len(found) == 1, f"{workload['metadata']['name']}: no container {name}"
    return found[0]


def volume(workload: dict[str, Any], name: str) -> dict[str, Any]:
    found = [v for v in pod_spec(workload).get("volumes", []) if v["name"] == name]
    assert len(found) == 1, f"{workload['metadata']['name']}: no volume {name}"
    return found[0]


def mount_at(ctr: dict[str, Any], path: str) -> dict[str, Any]:
    found = [m for m in ctr.get("volumeMounts", []) if m["mountPath"] == path]
    assert len(found) == 1, f"container {ctr['name']}: nothing mounted at {path}"
    return found[0]


def env_map(ctr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in ctr.get("env", [])}


def configmap_config(rendered: Rendered, name: str) -> dict[str, Any]:
    cm = rendered.get("ConfigMap", name)
    data: dict[str, Any] = yaml.safe_load(cm["data"]["logship.yml"])
    return data


HOST_LOG_DIRS = ["/var/log/containers", "/var/log/pods", "/var/lib/docker/containers"]
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$")
_FACTOR = {None: 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value: object) -> float:
    m = _QUANTITY.match(str(value))
    assert m, f"not a Kubernetes quantity: {value!r}"
    return float(m.group(1)) * _FACTOR[m.group(2)]


def shipper_ds(r: Rendered) -> dict[str, Any]:
    return r.get("DaemonSet", f"{fullname(r.scenario)}-shipper")


def aggregator_deploy(r: Rendered) -> dict[str, Any]:
    """The aggregator workload: a Deployment, or a StatefulSet with per-replica dead-letter volumes."""
    name = f"{fullname(r.scenario)}-aggregator"
    return r.maybe("StatefulSet", name) or r.get("Deployment", name)


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def port_number(ctr: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    found = [p["containerPort"] for p in ctr.get("ports", []) if p.get("name") == port]
    assert found, f"container {ctr['name']} has no port named {port}"
    return int(found[0])


def mounted_volume_for(workload: dict[str, Any], ctr: dict[str, Any], path: str) -> tuple[dict[str, Any], Any]:
    """The mount whose mountPath contains `path` (deepest wins) and its volume."""
    best = None
    for m in ctr.get("volumeMounts", []):
        mp = PurePosixPath(m["mountPath"])
        if PurePosixPath(path) == mp or mp in PurePosixPath(path).parents:
            if best is None or len(mp.parts) > len(PurePosixPath(best["mountPath"]).parts):
                best = m
    assert best is not None, f"{ctr['name']}: {path} is on no mounted volume"
    return best, volume(workload, best["name"])


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a helm binary of the pinned version; built by scripts/tools.sh on first use."""
    proc = subprocess.run(["bash", str(TOOLS), "helm"], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"scripts/tools.sh helm failed:\n{proc.stderr[-4000:]}")
    path = proc.stdout.strip().splitlines()[-1]
    assert os.access(path, os.X_OK), path
    return path


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # Keep helm's own config and cache out of the home directory and the clone.
        "HELM_CACHE_HOME": str(Path(helm).parent.parent / "helm-home" / "cache"),
        "HELM_CONFIG_HOME": str(Path(helm).parent.parent / "helm-home" / "config"),
        "HELM_DATA_HOME": str(Path(helm).parent.parent / "helm-home" / "data"),
    }
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, env=env)


def template_args(scenario: str, *extra: str) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    vf = values_file(scenario)
    if vf is not None:
        args += ["-f", str(vf)]
    if scenario == "servicemonitor-values":
        # as on a cluster with the Prometheus Operator's CRDs (the chart renders it only then)
        args += ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"]
    if scenario == "scaling-values":
        args += ["--api-versions", "monitoring.coreos.com/v1/PrometheusRule"]
    return [*args, *extra]


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., Rendered]:
    """render(scenario, *extra_helm_args) -> Rendered; cached per argument list."""
    cache: dict[tuple[str, ...], Rendered] = {}

    def _render(scenario: str, *extra: str) -> Rendered:
        key = (scenario, *extra)
        if key not in cache:
            proc = run_helm(helm, *template_args(scenario, *extra))
            assert proc.returncode == 0, f"helm template ({scenario}) failed:\n{proc.stderr}"
            docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
            cache[key] = Rendered(scenario, docs, proc.stdout)
        return cache[key]

    return _render


@pytest.fixture(scope="session", params=SCENARIOS)
def rendered(request: pytest.FixtureRequest, render: Callable[..., Rendered]) -> Iterator[Rendered]:
    yield render(request.param)


@pytest.fixture(scope="session")
def default(render: Callable[..., Rendered]) -> Rendered:
    return render("default")
