"""helm lint and helm template on the chart with its default values and each ci/*.yaml values file,
and every rendered manifest validated against the Kubernetes OpenAPI schemas (strict: unknown fields
are errors) for the oldest supported and the newest bundled Kubernetes version."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from tests.deploy.conftest import (
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    Rendered,
    fullname,
    run_helm,
    template_args,
    values_file,
)

# Kinds that come from CRDs; kubernetes-validate has no schema for them (checked by hand below).
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
SCHEMA_VERSIONS = [KUBE_VERSION, kubernetes_validate.utils.latest_version()]


def test_ci_values_files_cover_the_switches() -> None:
    # The scenarios the other tests rely on exist (a renamed file would silently drop coverage).
    assert {
        "tls-values",
        "sidecar-values",
        "servicemonitor-values",
        "custom-secret-values",
        "sigv4-values",
        "hardened-values",
        "scaling-values",
    } <= set(SCENARIOS)


def test_schemas_cover_the_supported_versions() -> None:
    versions = kubernetes_validate.utils.all_versions()
    assert "1.29.0" in versions, f"kubernetes-validate bundles {versions}; need 1.29"
    assert SCHEMA_VERSIONS[1] >= "1.29"


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kube_version", [None, KUBE_VERSION])
def test_helm_lint(helm: str, scenario: str, kube_version: str | None) -> None:
    args = ["lint", str(CHART), "--strict", "--namespace", NAMESPACE]
    vf = values_file(scenario)
    if vf is not None:
        args += ["-f", str(vf)]
    if kube_version:
        args += ["--kube-version", kube_version]
    proc = run_helm(helm, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_helm_refuses_kubernetes_older_than_declared(helm: str) -> None:
    proc = run_helm(helm, "template", RELEASE, str(CHART), "--kube-version", "1.28.0")
    assert proc.returncode != 0
    assert "kubeVersion" in proc.stderr


def test_template_renders_expected_objects(rendered: Rendered) -> None:
    name = fullname(rendered.scenario)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered.docs}
    aggregator_kind = "StatefulSet" if rendered.scenario == "hardened-values" else "Deployment"
    assert {
        ("ServiceAccount", f"{name}-shipper"),
        ("ServiceAccount", f"{name}-aggregator"),
        ("DaemonSet", f"{name}-shipper"),
        ("ConfigMap", f"{name}-shipper"),
        (aggregator_kind, f"{name}-aggregator"),
        ("ConfigMap", f"{name}-aggregator"),
        ("Service", f"{name}-aggregator"),
        ("Pod", f"{name}-test-output"),
    } <= kinds
    # The ClusterRole exists only with Kubernetes metadata on (nothing else calls the API server).
    shipper_cfg = yaml.safe_load(rendered.get("ConfigMap", f"{name}-shipper")["data"]["logship.yml"])["shipper"]
    with_metadata = bool(shipper_cfg.get("kubernetes", {}).get("enabled"))
    assert (("ClusterRole", f"{name}-shipper") in kinds) is with_metadata
    assert (("ClusterRoleBinding", f"{name}-shipper") in kinds) is with_metadata
    # Namespaced objects land in the release namespace unless they belong to app namespaces (sidecar).
    for d in rendered.docs:
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            assert "namespace" not in d["metadata"]
        elif d["metadata"].get("labels", {}).get("app.kubernetes.io/component") in ("sidecar", "example-app"):
            assert d["metadata"]["namespace"] == "shop"
        else:
            assert d["metadata"]["namespace"] == NAMESPACE, d["metadata"]["name"]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_manifest_validates_strictly(rendered: Rendered, version: str) -> None:
    checked = 0
    for doc in rendered.docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
        except SchemaNotFoundError:
            assert (doc["apiVersion"], doc["kind"]) in CRD_KINDS, f"no schema for {doc['kind']}"
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for {version}: {path}: {exc.message}")
    assert checked >= 8


def test_validation_would_catch_a_bad_manifest(default: Rendered) -> None:
    # The strict check is not a no-op: an unknown field and a wrong type in the DaemonSet both fail.
    ds = default.all("DaemonSet")[0]
    bad = {**ds, "spec": {**ds["spec"], "replicas": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSION, strict=True)
    tpl = ds["spec"]["template"]
    ctr = {**tpl["spec"]["containers"][0], "ports": [{"containerPort": "5066"}]}
    bad = {**ds, "spec": {**ds["spec"], "template": {**tpl, "spec": {**tpl["spec"], "containers": [ctr]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSION, strict=True)


def test_servicemonitor_shape(render: Callable[..., Rendered]) -> None:
    r = render("servicemonitor-values")
    sm = r.get("ServiceMonitor", "logship")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert not render("default").all("ServiceMonitor")


def test_servicemonitor_only_where_its_crd_exists(helm: str) -> None:
    # Without the Prometheus Operator's CRD the install would fail on an unknown kind: nothing rendered.
    vf = values_file("servicemonitor-values")
    assert vf is not None
    proc = run_helm(helm, *template_args("default", "-f", str(vf)))
    assert proc.returncode == 0, proc.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(proc.stdout) if d}
    assert "ServiceMonitor" not in kinds and "DaemonSet" in kinds


def test_values_schema_refuses_typos_and_surge(helm: str) -> None:
    for bad, where in (
        ("aggregator.replica=3", "additional properties 'replica' not allowed"),
        ("shipper.updateStrategy.rollingUpdate.maxSurge=1", "maxSurge"),
        ("image.digest=latest", "digest"),
        ("logLevel=verbose", "logLevel"),
    ):
        proc = run_helm(helm, *template_args("default", "--set", bad))
        assert proc.returncode != 0, bad
        assert where in proc.stderr, proc.stderr


def test_notes_show_how_to_check_the_install(helm: str, tmp_path: Path) -> None:
    # helm renders NOTES.txt only on install (which needs a cluster); a throwaway copy of the chart
    # includes it in a ConfigMap so `helm template` shows the text a user would see.
    chart = tmp_path / "logship"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |\n"
        '    {{- include "logship/templates/NOTES.txt" . | nindent 4 }}\n'
    )
    proc = run_helm(
        helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION,
        "--show-only", "templates/zz-notes.yaml",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notes = yaml.safe_load(proc.stdout)["data"]["notes"]
    assert 'Secret "opensearchaccount"' in notes
    assert "kubectl create secret generic opensearchaccount --namespace kube-system" in notes
    assert "mounted as files" in notes and "FailedMount" in notes
    assert "helm test logship --namespace kube-system" in notes
    assert "/var/lib/logship/kube-system.logship" in notes
    assert "logship test output -c /etc/logship/logship.yml" in notes
    assert "port-forward --namespace kube-system svc/logship-aggregator 9600:9600" in notes
    assert "logship-aggregator.kube-system.svc:5044" in notes
    assert "retries with backoff" in notes
