"""What the chart promises for the aggregator, read from the manifests `helm template` renders: replicas,
Service and PDB, secret references for OpenSearch and lumberjack TLS, the ServiceMonitor, SigV4, and the
switches for an existing Logstash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

import pytest

from tests.deploy.conftest import (
    NAMESPACE,
    Rendered,
    aggregator_deploy,
    configmap_config,
    container,
    env_map,
    fullname,
    mounted_volume_for,
    pod_labels,
    pod_spec,
    port_number,
    selects,
    shipper_ds,
)

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
