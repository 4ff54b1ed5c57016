"""Each fact the chart promises, read from the manifests `helm template` renders: host mounts, state
directory, RBAC, secret references, probes, resources, tolerations, security contexts, the aggregator
Service and PDB, the sidecar wiring, and the ServiceMonitor wiring."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    Rendered,
    configmap_config,
    container,
    containers,
    env_map,
    fullname,
    mount_at,
    pod_spec,
    volume,
)

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


# --- every workload -------------------------------------------------------------------------------


def test_probes_on_health_port(rendered: Rendered) -> None:
    name = fullname(rendered.scenario)
    for workload, ctr_name, section, port in (
        (shipper_ds(rendered), "shipper", "shipper", 5066),
        (aggregator_deploy(rendered), "aggregator", "aggregator", 9600),
    ):
        ctr = container(workload, ctr_name)
        cfg = configmap_config(rendered, f"{name}-{section}")[section]
        assert cfg["http"]["port"] == port
        live = ctr["livenessProbe"]["httpGet"]
        assert live["path"] == "/healthz" and port_number(ctr, live["port"]) == port
        if rendered.scenario == "hardened-values" and section == "shipper":
            # probes come from values: this scenario turns the shipper's readiness probe off
            assert "readinessProbe" not in ctr and ctr["livenessProbe"]["periodSeconds"] == 20
            continue
        ready = ctr["readinessProbe"]["httpGet"]
        assert ready["path"] == "/readyz" and port_number(ctr, ready["port"]) == port


def test_requests_and_limits_are_small(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        for ctr in containers(workload):
            res = ctr["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res[kind]), f"{ctr['name']}: {kind} incomplete"
            assert quantity(res["requests"]["memory"]) <= quantity(res["limits"]["memory"])
            if not ctr["image"].startswith("logship"):
                continue  # the demo app, extra containers
            # No memory overcommit for logship: request = limit, so a node under pressure never
            # OOM-kills it for using what it was promised.
            assert res["requests"]["memory"] == res["limits"]["memory"], ctr["name"]
            # Logstash needed a 1.5 GiB container; logship must fit in a fraction of that.
            assert quantity(res["limits"]["memory"]) <= 512 * 2**20, ctr["name"]
    agg = container(aggregator_deploy(rendered), "aggregator")
    # above the aggregator's designed bound of 300 MiB (measured peak 155 MiB, docs/guarantees.md)
    assert quantity(agg["resources"]["limits"]["memory"]) > 300 * 2**20


def test_restrictive_security_context(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        pod_sc = pod_spec(workload).get("securityContext", {})
        for ctr in containers(workload):
            sc = ctr["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, ctr["name"]
            assert sc["allowPrivilegeEscalation"] is False, ctr["name"]
            assert sc.get("privileged", False) is False
            assert sc["capabilities"] == {"drop": ["ALL"]}, ctr["name"]
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile")
            assert seccomp == {"type": "RuntimeDefault"}
            run_as_root = sc.get("runAsUser", pod_sc.get("runAsUser")) == 0
            # Only the node shipper reads root-owned host logs as uid 0; everything else is non-root.
            if ctr["name"] == "shipper":
                assert run_as_root
            else:
                assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, ctr["name"]
                assert not run_as_root
        assert not pod_spec(workload).get("hostNetwork") and not pod_spec(workload).get("hostPID")


def test_writable_paths_are_on_writable_volumes(rendered: Rendered) -> None:
    # readOnlyRootFilesystem: every path a process writes must be a mounted, writable volume.
    name = fullname(rendered.scenario)
    agg = aggregator_deploy(rendered)
    cfg = configmap_config(rendered, f"{name}-aggregator")["aggregator"]
    agg_ctr = container(agg, "aggregator")
    if agg["kind"] == "StatefulSet":
        # one claim per replica from the template (a shared claim cannot attach to two nodes on EBS)
        mount = next(m for m in agg_ctr["volumeMounts"] if cfg["dead_letter"]["path"].startswith(m["mountPath"] + "/"))
        (claim,) = agg["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == mount["name"] and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert not [v for v in pod_spec(agg)["volumes"] if v["name"] == mount["name"]]
    else:
        mount, vol = mounted_volume_for(agg, agg_ctr, cfg["dead_letter"]["path"])
        assert "emptyDir" in vol
    assert not mount.get("readOnly")
    for workload in rendered.workloads():
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        for ctr in containers(workload):
            for m in ctr.get("volumeMounts", []):
                if m["name"] not in claims:
                    volume(workload, m["name"])  # every mount names a volume of the pod


def test_config_file_comes_from_the_rendered_configmap(rendered: Rendered) -> None:
    name = fullname(rendered.scenario)
    for workload, ctr_name, cm in (
        (shipper_ds(rendered), "shipper", f"{name}-shipper"),
        (aggregator_deploy(rendered), "aggregator", f"{name}-aggregator"),
    ):
        ctr = container(workload, ctr_name)
        assert ctr["args"][-2:] == ["-c", "/etc/logship/logship.yml"]
        assert ctr_name in ctr["args"]
        m = mount_at(ctr, "/etc/logship/logship.yml")
        assert m["subPath"] == "logship.yml" and m["readOnly"] is True
        assert volume(workload, m["name"])["configMap"]["name"] == cm
        assert "logship.yml" in rendered.get("ConfigMap", cm)["data"]


# --- RBAC -----------------------------------------------------------------------------------------


def test_service_accounts_and_api_access(rendered: Rendered) -> None:
    name = fullname(rendered.scenario)
    ds, agg = shipper_ds(rendered), aggregator_deploy(rendered)
    shipper_sa, agg_sa = pod_spec(ds)["serviceAccountName"], pod_spec(agg)["serviceAccountName"]
    # one ServiceAccount per component, so the IRSA role never reaches the node agents
    assert (shipper_sa, agg_sa) == (f"{name}-shipper", f"{name}-aggregator")
    for sa in (shipper_sa, agg_sa):
        assert rendered.get("ServiceAccount", sa)["metadata"]["namespace"] == NAMESPACE
    assert "annotations" not in rendered.get("ServiceAccount", shipper_sa)["metadata"]
    # the aggregator never calls the API server; the shipper only for Kubernetes metadata
    assert pod_spec(agg)["automountServiceAccountToken"] is False
    assert rendered.get("ServiceAccount", agg_sa)["automountServiceAccountToken"] is False
    shipper_cfg = yaml.safe_load(rendered.get("ConfigMap", f"{name}-shipper")["data"]["logship.yml"])["shipper"]
    metadata = bool(shipper_cfg.get("kubernetes", {}).get("enabled"))  # the one switch: config, token, role
    assert pod_spec(ds)["automountServiceAccountToken"] is metadata
    role = rendered.maybe("ClusterRole", f"{name}-shipper")
    if not metadata:
        assert role is None and not rendered.all("ClusterRoleBinding") and not rendered.all("Role")
        assert rendered.get("ServiceAccount", shipper_sa)["automountServiceAccountToken"] is False
        return
    assert role is not None
    granted: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""]
        for res in rule["resources"]:
            granted.setdefault(res, set()).update(rule["verbs"])
    # exactly what the shipper's metadata watch uses (tests/kube_api proves it is enough)
    assert granted == {r: {"list", "watch"} for r in ("pods", "namespaces", "nodes")}
    binding = rendered.get("ClusterRoleBinding", f"{name}-shipper")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{name}-shipper",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": shipper_sa, "namespace": NAMESPACE}]


def test_no_cluster_role_without_kubernetes_metadata(render: Callable[..., Rendered]) -> None:
    off = render("default", "--set", "shipper.config.kubernetes.enabled=false")
    assert off.all("ClusterRole") == [] and off.all("ClusterRoleBinding") == []
    name = fullname(off.scenario)
    config = yaml.safe_load(off.get("ConfigMap", f"{name}-shipper")["data"]["logship.yml"])
    assert config["shipper"]["kubernetes"] == {"enabled": False}
    assert pod_spec(shipper_ds(off))["automountServiceAccountToken"] is False
    on = render("default")
    assert yaml.safe_load(on.get("ConfigMap", f"{name}-shipper")["data"]["logship.yml"])["shipper"]["kubernetes"][
        "enabled"
    ]
    assert pod_spec(shipper_ds(on))["automountServiceAccountToken"] is True


# --- aggregator -----------------------------------------------------------------------------------


def test_aggregator_replicas(render: Callable[..., Rendered]) -> None:
    assert aggregator_deploy(render("default"))["spec"]["replicas"] == 2
    assert aggregator_deploy(render("servicemonitor-values"))["spec"]["replicas"] == 3


def test_aggregator_service_ports(rendered: Rendered) -> None:
    svc = rendered.get("Service", f"{fullname(rendered.scenario)}-aggregator")
    agg = aggregator_deploy(rendered)
    ctr = container(agg, "aggregator")
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert {n: p["port"] for n, p in ports.items()} == {"lumberjack": 5044, "metrics": 9600}
    for p in ports.values():
        assert p["protocol"] == "TCP"
        assert port_number(ctr, p["targetPort"]) == p["port"]
    assert selects(svc["spec"]["selector"], pod_labels(agg))
    # The selector picks aggregator pods only, never shipper pods.
    assert not selects(svc["spec"]["selector"], pod_labels(shipper_ds(rendered)))


def test_aggregator_pdb(render: Callable[..., Rendered]) -> None:
    r = render("default")
    pdb = r.get("PodDisruptionBudget", "logship-aggregator")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(aggregator_deploy(r)))
    assert not render("custom-secret-values").all("PodDisruptionBudget")


@pytest.mark.parametrize(
    ("scenario", "secret", "user_key", "pass_key"),
    [
        ("default", "opensearchaccount", "username", "password"),
        ("custom-secret-values", "logs-writer", "user", "pass"),
    ],
)
def test_aggregator_credentials_from_secret(
    render: Callable[..., Rendered], scenario: str, secret: str, user_key: str, pass_key: str
) -> None:
    r = render(scenario)
    agg = aggregator_deploy(r)
    ctr = container(agg, "aggregator")
    env = env_map(ctr)
    # mounted files, never env (env leaks into `kubectl describe`, crash dumps and child processes)
    assert "OPENSEARCH_USERNAME" not in env and "OPENSEARCH_PASSWORD" not in env
    os_cfg = configmap_config(r, f"{fullname(scenario)}-aggregator")["aggregator"]["opensearch"]
    assert "username" not in os_cfg and "password" not in os_cfg
    for field, key in (("username_file", user_key), ("password_file", pass_key)):
        mount, vol = mounted_volume_for(agg, ctr, os_cfg[field])
        assert mount["readOnly"] is True and vol["secret"]["secretName"] == secret
        item = {"key": key, "path": PurePosixPath(os_cfg[field]).name}
        assert item in vol["secret"]["items"]
    # readable by the aggregator's group only (fsGroup), not world-readable
    assert vol["secret"]["defaultMode"] == 0o440 and pod_spec(agg)["securityContext"]["fsGroup"] == 10001
    # a changed Secret rolls the pods on the next upgrade
    assert "checksum/opensearch-auth" in agg["spec"]["template"]["metadata"]["annotations"]
    # No Secret object is rendered: the chart only refers to the one the operator created.
    assert not r.all("Secret")


def test_aggregator_config_defaults_match_spec(default: Rendered) -> None:
    cfg = configmap_config(default, "logship-aggregator")["aggregator"]
    assert cfg["routes"] == [
        {"tag": "containers", "index": "logstash-logs-containers-%{+YYYY.MM.dd}"},
        {"tag": "app", "index": "logstash-logs-app-%{+YYYY.MM.dd}"},
    ]
    assert cfg["listen"] == {"host": "0.0.0.0", "port": 5044}
    assert cfg["http"]["port"] == 9600
    assert cfg["opensearch"]["hosts"] == ["https://opensearch.example.com:443"]
    assert cfg["opensearch"]["verify_certs"] is True
    assert "ca_file" not in cfg["opensearch"]


def test_opensearch_ca_from_existing_secret(render: Callable[..., Rendered]) -> None:
    r = render("tls-values")
    agg = aggregator_deploy(r)
    os_cfg = configmap_config(r, "logship-aggregator")["aggregator"]["opensearch"]
    assert os_cfg["hosts"] == [
        "https://search-logs.eu-west-1.es.amazonaws.com:443",
        "https://opensearch-2.example.com:9200",
    ]
    mount, vol = mounted_volume_for(agg, container(agg, "aggregator"), os_cfg["ca_file"])
    assert mount["readOnly"] is True
    assert vol["secret"]["secretName"] == "opensearch-ca"
    assert PurePosixPath(os_cfg["ca_file"]).name in {i["path"] for i in vol["secret"]["items"]}


def test_opensearch_ca_from_inline_pem(render: Callable[..., Rendered]) -> None:
    r = render("sidecar-values")
    agg = aggregator_deploy(r)
    os_cfg = configmap_config(r, "logship-aggregator")["aggregator"]["opensearch"]
    _, vol = mounted_volume_for(agg, container(agg, "aggregator"), os_cfg["ca_file"])
    cm = r.get("ConfigMap", vol["configMap"]["name"])
    assert cm["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")


def test_lumberjack_mutual_tls(render: Callable[..., Rendered]) -> None:
    r = render("tls-values")
    agg, ds = aggregator_deploy(r), shipper_ds(r)
    listen = configmap_config(r, "logship-aggregator")["aggregator"]["listen"]["tls"]
    assert listen["enabled"] is True and listen["require_client_cert"] is True
    out = configmap_config(r, "logship-shipper")["shipper"]["output"]["tls"]
    assert out["enabled"] is True
    assert out["server_name"] == f"logship-aggregator.{NAMESPACE}.svc"
    for workload, ctr_name, files in (
        (agg, "aggregator", [listen["cert_file"], listen["key_file"], listen["ca_file"]]),
        (ds, "shipper", [out["cert_file"], out["key_file"], out["ca_file"]]),
    ):
        for f in files:
            mount, vol = mounted_volume_for(workload, container(workload, ctr_name), f)
            assert mount["readOnly"] is True and vol["secret"]["secretName"] == "logship-tls"


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


# --- ServiceMonitor -------------------------------------------------------------------------------


def test_servicemonitor_finds_both_metrics_endpoints(render: Callable[..., Rendered]) -> None:
    r = render("servicemonitor-values")
    sm = r.get("ServiceMonitor", "logship")
    selected = [s for s in r.all("Service") if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    by_name = {s["metadata"]["name"]: s for s in selected}
    assert set(by_name) == {"logship-aggregator", "logship-shipper-metrics"}
    for svc, workload, ctr_name, port in (
        (by_name["logship-aggregator"], aggregator_deploy(r), "aggregator", 9600),
        (by_name["logship-shipper-metrics"], shipper_ds(r), "shipper", 5066),
    ):
        metrics = [p for p in svc["spec"]["ports"] if p["name"] == "metrics"]
        assert len(metrics) == 1 and metrics[0]["port"] == port
        assert port_number(container(workload, ctr_name), metrics[0]["targetPort"]) == port
        assert selects(svc["spec"]["selector"], pod_labels(workload))
    assert by_name["logship-shipper-metrics"]["spec"]["clusterIP"] == "None"


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


def test_sigv4_without_a_secret(render: Callable[..., Rendered]) -> None:
    r = render("sigv4-values")
    agg = aggregator_deploy(r)
    env = env_map(container(agg, "aggregator"))
    assert "OPENSEARCH_USERNAME" not in env and "OPENSEARCH_PASSWORD" not in env
    os_cfg = configmap_config(r, "logship-aggregator")["aggregator"]["opensearch"]
    assert os_cfg["aws_sigv4"] == {"region": "eu-west-1", "service": "es"}
    assert "username" not in os_cfg and "password" not in os_cfg
    sa = r.get("ServiceAccount", pod_spec(agg)["serviceAccountName"])
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_switches_for_an_existing_logstash(render: Callable[..., Rendered]) -> None:
    # Aggregator off: the shippers send to the hosts given (a real Logstash speaks the same protocol).
    r = render("default", "--set", "aggregator.enabled=false", "--set", "shipper.outputHosts={logstash.elk.svc:5044}")
    assert not r.all("Deployment") and not r.all("PodDisruptionBudget")
    assert r.maybe("Service", "logship-aggregator") is None
    cfg = configmap_config(r, "logship-shipper")["shipper"]
    assert cfg["output"]["hosts"] == ["logstash.elk.svc:5044"]
    # Shipper off: an aggregator alone (for shippers elsewhere, or a real Filebeat).
    r = render("default", "--set", "shipper.enabled=false")
    assert not r.all("DaemonSet") and r.maybe("ConfigMap", "logship-shipper") is None
    assert aggregator_deploy(r)["spec"]["replicas"] == 2
