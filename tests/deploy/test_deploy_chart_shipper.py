"""What the chart promises for the shipper, read from the manifests `helm template` renders: the
DaemonSet's host mounts, state directory, node name and tolerations, where it sends, and the sidecar
wiring (the chart's and its example's)."""

from __future__ import annotations

import re
from collections.abc import Callable

import kubernetes_validate
import yaml

from tests.deploy.conftest import (
    CHART,
    HOST_LOG_DIRS,
    KUBE_VERSION,
    NAMESPACE,
    Rendered,
    aggregator_deploy,
    configmap_config,
    container,
    env_map,
    fullname,
    mount_at,
    mounted_volume_for,
    pod_labels,
    pod_spec,
    port_number,
    selects,
    shipper_ds,
    volume,
)

# --- shipper DaemonSet ----------------------------------------------------------------------------


def test_shipper_mounts_host_log_dirs_read_only(rendered: Rendered) -> None:
    ds = shipper_ds(rendered)
    ctr = container(ds, "shipper")
    for path in HOST_LOG_DIRS:
        m = mount_at(ctr, path)
        assert m.get("readOnly") is True, f"{path} must be mounted read-only"
        vol = volume(ds, m["name"])
        assert vol["hostPath"]["path"] == path
    # No host directory other than the state directory is writable.
    for m in ctr["volumeMounts"]:
        vol = volume(ds, m["name"])
        if "hostPath" in vol and not m.get("readOnly"):
            assert vol["hostPath"]["type"] == "DirectoryOrCreate"
            assert m["mountPath"] == "/var/lib/logship"


def test_shipper_registry_on_host_state_dir(rendered: Rendered) -> None:
    ds = shipper_ds(rendered)
    ctr = container(ds, "shipper")
    cfg = configmap_config(rendered, f"{fullname(rendered.scenario)}-shipper")["shipper"]
    mount, vol = mounted_volume_for(ds, ctr, cfg["registry"]["path"])
    assert not mount.get("readOnly")
    # one node directory per release: two releases never share a registry
    assert vol["hostPath"] == {"path": f"/var/lib/logship/{NAMESPACE}.logship", "type": "DirectoryOrCreate"}


def test_shipper_refuses_surge(render: Callable[..., Rendered]) -> None:
    ds = shipper_ds(render("default"))
    assert "maxSurge" not in ds["spec"]["updateStrategy"]["rollingUpdate"]
    # explicit 0 is fine
    r = render("default", "--set", "shipper.updateStrategy.rollingUpdate.maxSurge=0")
    assert shipper_ds(r)["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] == 0


def test_shipper_node_name_from_downward_api(rendered: Rendered) -> None:
    ctr = container(shipper_ds(rendered), "shipper")
    assert env_map(ctr)["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    cfg = configmap_config(rendered, f"{fullname(rendered.scenario)}-shipper")["shipper"]
    assert cfg["name"].startswith("${NODE_NAME")


def test_shipper_tolerates_every_taint(rendered: Rendered) -> None:
    tolerations = pod_spec(shipper_ds(rendered))["tolerations"]
    # A toleration with operator Exists and no key matches every taint, whatever its effect.
    assert any(t.get("operator") == "Exists" and "key" not in t and "effect" not in t for t in tolerations)


def test_shipper_uses_chart_service_account(rendered: Rendered) -> None:
    sa = pod_spec(shipper_ds(rendered))["serviceAccountName"]
    assert rendered.get("ServiceAccount", sa)["metadata"]["namespace"] == NAMESPACE


def test_shipper_config_defaults_match_spec(default: Rendered) -> None:
    cfg = configmap_config(default, "logship-shipper")["shipper"]
    assert cfg["inputs"] == [{"type": "containers", "paths": ["/var/log/containers/*.log"], "tags": ["containers"]}]
    assert cfg["sidecar"] is False
    assert cfg["http"]["port"] == 5066
    assert cfg["output"]["backoff"] == {"initial": "1s", "max": "60s"}


def test_shipper_sends_to_the_aggregator_service(rendered: Rendered) -> None:
    name = fullname(rendered.scenario)
    cfg = configmap_config(rendered, f"{name}-shipper")["shipper"]
    # with the headless Service on, its name (one address per aggregator pod); else the ClusterIP one
    service = f"{name}-aggregator-headless" if rendered.scenario == "scaling-values" else f"{name}-aggregator"
    assert cfg["output"]["hosts"] == [f"{service}.{NAMESPACE}.svc:5044"]
    svc = rendered.get("Service", service)
    port = next(p for p in svc["spec"]["ports"] if p["port"] == 5044)
    agg = aggregator_deploy(rendered)
    assert selects(svc["spec"]["selector"], pod_labels(agg))
    assert port_number(container(agg, "aggregator"), port["targetPort"]) == 5044


def test_config_change_rolls_pods(render: Callable[..., Rendered]) -> None:
    base = render("default")
    changed = render("default", "--set", "shipper.config.output.window_size=1024")
    agg_changed = render("default", "--set", "aggregator.config.bulk.max_docs=100")

    def checksum(r: Rendered, kind: str, name: str) -> str:
        value: str = r.get(kind, name)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        assert re.fullmatch(r"[0-9a-f]{64}", value)
        return value

    ds, dep = ("DaemonSet", "logship-shipper"), ("Deployment", "logship-aggregator")
    assert checksum(base, *ds) != checksum(changed, *ds)
    assert checksum(base, *dep) == checksum(changed, *dep)
    assert checksum(base, *dep) != checksum(agg_changed, *dep)
    assert checksum(base, *ds) == checksum(agg_changed, *ds)
    assert configmap_config(changed, "logship-shipper")["shipper"]["output"]["window_size"] == 1024


# --- sidecar --------------------------------------------------------------------------------------


def test_sidecar_shares_app_logs_and_knows_its_pod(render: Callable[..., Rendered]) -> None:
    r = render("sidecar-values")
    app = r.get("Deployment", "userstore")
    assert app["metadata"]["namespace"] == "shop"
    spec = pod_spec(app)
    sidecar = container(app, "logship-shipper")
    app_ctr = container(app, "userstore")
    # Native sidecar: an init container that keeps running (starts first, stops last).
    assert sidecar in spec["initContainers"] and sidecar["restartPolicy"] == "Always"

    side_mount, app_mount = mount_at(sidecar, "/app/logs"), mount_at(app_ctr, "/app/logs")
    assert side_mount["name"] == app_mount["name"]
    assert side_mount["readOnly"] is True and not app_mount.get("readOnly")
    assert "emptyDir" in volume(app, side_mount["name"])

    env = env_map(sidecar)
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["CONTAINER_NAME"]["value"] == "userstore"

    assert sidecar["args"][-3:] == ["shipper", "-c", "/etc/logship/logship.yml"]
    cm_name = volume(app, mount_at(sidecar, "/etc/logship/logship.yml")["name"])["configMap"]["name"]
    cm = r.get("ConfigMap", cm_name)
    assert cm["metadata"]["namespace"] == "shop"
    cfg = configmap_config(r, cm_name)["shipper"]
    assert cfg["sidecar"] is True
    assert [(i["type"], i["paths"], i["tags"]) for i in cfg["inputs"]] == [("app", ["/app/logs/log-*.log"], ["app"])]
    # Fully qualified: the app namespace differs from the aggregator's.
    assert cfg["output"]["hosts"] == [f"logship-aggregator.{NAMESPACE}.svc:5044"]
    reg_mount, reg_vol = mounted_volume_for(app, sidecar, cfg["registry"]["path"])
    assert not reg_mount.get("readOnly") and "emptyDir" in reg_vol


def test_sidecar_as_plain_container(render: Callable[..., Rendered]) -> None:
    r = render("sidecar-values", "--set", "sidecar.native=false")
    app = r.get("Deployment", "userstore")
    names = [c["name"] for c in pod_spec(app)["containers"]]
    assert names == ["userstore", "logship-shipper"]
    assert "initContainers" not in pod_spec(app)


def test_sidecar_off_by_default(default: Rendered) -> None:
    assert default.maybe("ConfigMap", "logship-sidecar") is None
    assert [w["metadata"]["name"] for w in default.workloads()] == ["logship-shipper", "logship-aggregator"]


def test_sidecar_example_matches_the_chart(render: Callable[..., Rendered]) -> None:
    # examples/app-with-sidecar.yaml is what app owners copy: its sidecar block and volumes must be
    # exactly what the chart renders, and it must be a valid manifest.
    example = yaml.safe_load((CHART / "examples" / "app-with-sidecar.yaml").read_text())
    kubernetes_validate.validate(example, KUBE_VERSION, strict=True)
    r = render("sidecar-values")
    rendered_app = r.get("Deployment", "userstore")
    assert container(example, "logship-shipper") == container(rendered_app, "logship-shipper")
    assert pod_spec(example)["volumes"] == pod_spec(rendered_app)["volumes"]
    assert mount_at(container(example, "userstore"), "/app/logs")["name"] == "app-logs"
    assert example["metadata"]["namespace"] == "shop"
