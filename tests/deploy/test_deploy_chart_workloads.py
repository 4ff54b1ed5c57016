"""What the chart promises for every workload, read from the manifests `helm template` renders: probes,
resources, security contexts, writable paths, the config file, and RBAC."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from tests.deploy.conftest import (
    NAMESPACE,
    Rendered,
    aggregator_deploy,
    configmap_config,
    container,
    containers,
    fullname,
    mount_at,
    mounted_volume_for,
    pod_spec,
    port_number,
    quantity,
    shipper_ds,
    volume,
)

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
