"""The config in every rendered ConfigMap passes the real `logship test config`, run with exactly the
environment the pod that mounts it would have (its env entries: values, downward-API fields and
Secret keys, the latter filled with stand-in values), so a `${VAR}` that the pod does not provide
fails here as it would fail in the cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import Rendered, containers, pod_spec

FIELD_VALUES = {
    "spec.nodeName": "ip-10-0-1-23.eu-west-1.compute.internal",
    "metadata.name": "userstore-7d9c8b7f5-x2k4q",
    "metadata.namespace": "shop",
}


def logship_cli() -> list[str]:
    script = Path(sys.executable).parent / "logship"
    if script.exists():
        return [str(script)]
    found = shutil.which("logship")
    return [found] if found else [sys.executable, "-m", "logship"]


def pod_env(ctr: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for e in ctr.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "fieldRef" in e.get("valueFrom", {}):
            env[e["name"]] = FIELD_VALUES[e["valueFrom"]["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = f"from-secret-{ref['name']}-{ref['key']}"
        else:
            pytest.fail(f"container {ctr['name']}: env {e['name']} has a source this test does not know")
    return env


def consumers(rendered: Rendered, cm_name: str) -> list[dict[str, Any]]:
    """Containers that mount ConfigMap `cm_name` as their config file."""
    found = []
    for workload in rendered.workloads():
        vols = {
            v["name"] for v in pod_spec(workload).get("volumes", []) if v.get("configMap", {}).get("name") == cm_name
        }
        for ctr in containers(workload):
            if any(m["name"] in vols and m["mountPath"] == "/etc/logship/logship.yml" for m in ctr["volumeMounts"]):
                found.append(ctr)
    return found


def run_test_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "SYSTEMROOT") if k in os.environ}
    return subprocess.run(
        [*logship_cli(), "test", "config", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **env},
        cwd=path.parent,
    )


def test_every_rendered_config_passes_logship_test_config(rendered: Rendered, tmp_path: Path) -> None:
    checked = []
    for cm in rendered.all("ConfigMap"):
        if "logship.yml" not in cm.get("data", {}):
            continue
        name = cm["metadata"]["name"]
        path = tmp_path / f"{name}.yml"
        path.write_text(cm["data"]["logship.yml"])
        users = consumers(rendered, name)
        assert users, f"ConfigMap {name} is mounted as config by no container"
        for ctr in users:
            proc = run_test_config(path, pod_env(ctr))
            assert proc.returncode == 0, f"{name} in {ctr['name']}:\n{proc.stdout}{proc.stderr}"
            section = "aggregator" if ctr["name"] == "aggregator" else "shipper"
            assert f"{section}: config OK" in proc.stdout
            checked.append((name, ctr["name"]))
    expected = 3 if rendered.scenario == "sidecar-values" else 2
    assert len(checked) == expected, checked


def test_aggregator_credentials_are_files_not_env(default: Rendered, tmp_path: Path) -> None:
    # The rendered aggregator config needs no Secret in the environment: it names the files the
    # Secret is mounted as (the facts test checks the mount), and the check passes with an empty env.
    text = default.get("ConfigMap", "logship-aggregator")["data"]["logship.yml"]
    assert "${OPENSEARCH" not in text
    path = tmp_path / "aggregator.yml"
    path.write_text(text)
    proc = run_test_config(path, {"NODE_NAME": "n1"})
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(text)["aggregator"]["opensearch"]
    assert cfg["username_file"] == "/etc/logship/opensearch-auth/username"
    assert cfg["password_file"] == "/etc/logship/opensearch-auth/password"


def test_broken_override_is_caught(render: Any, tmp_path: Path) -> None:
    # A values override with a key the config does not know renders fine but fails the check,
    # naming the key: the check reads the config, not just the YAML.
    r = render("default", "--set", "shipper.config.output.windowsize=10")
    path = tmp_path / "shipper.yml"
    path.write_text(r.get("ConfigMap", "logship-shipper")["data"]["logship.yml"])
    proc = run_test_config(path, {"NODE_NAME": "n1"})
    assert proc.returncode == 2
    assert "shipper.output.windowsize" in proc.stderr
