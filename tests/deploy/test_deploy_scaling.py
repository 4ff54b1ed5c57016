"""Scaling and monitoring in the chart: the headless aggregator Service and what the shippers make of
it, the CPU autoscaler, the PrometheusRule alerts and the Grafana dashboard, each read from what a real
`helm template` renders. Alert and panel expressions may only name metrics the processes export."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from aggregator.metrics import Metrics as AggregatorMetrics
from logship.lumberjack.server import _Metrics as LumberjackMetrics
from shipper.config import ShipperConfig
from shipper.metrics import ShipperMetrics
from tests.deploy.conftest import CHART, NAMESPACE, Rendered, configmap_config, run_helm, template_args

HEADLESS = f"logship-aggregator-headless.{NAMESPACE}.svc:5044"
SERVICE = f"logship-aggregator.{NAMESPACE}.svc:5044"
METRIC = re.compile(r"\blogship_[a-z_]+\b")


def exported_metric_names() -> set[str]:
    """Every sample name the shipper and aggregator can expose (counters as _total, histograms'
    _bucket/_sum/_count; the shipper's bytes-behind collector by its family names)."""
    registries = [ShipperMetrics().registry, CollectorRegistry()]
    AggregatorMetrics(registries[1])
    LumberjackMetrics(registries[1])
    names = {"logship_shipper_bytes_behind", "logship_shipper_files_behind", "logship_shipper_file_bytes_behind"}
    for registry in registries:
        for family in registry.collect():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
            else:
                names.add(family.name)
    return names


def shipper_output(rendered: Rendered, name: str = "logship-shipper") -> dict[str, Any]:
    cfg = configmap_config(rendered, name)["shipper"]
    ShipperConfig.from_dict(cfg)  # what the shipper would load validates
    out: dict[str, Any] = cfg["output"]
    return out


def test_default_shippers_go_through_the_service_with_a_ttl(default: Rendered) -> None:
    out = shipper_output(default)
    assert out["hosts"] == [SERVICE] and out["ttl"] == "60s" and not out.get("loadbalance")
    assert default.maybe("Service", "logship-aggregator-headless") is None
    assert not default.all("HorizontalPodAutoscaler") and not default.all("PrometheusRule")
    assert default.maybe("ConfigMap", "logship-dashboard") is None
    assert default.get("Deployment", "logship-aggregator")["spec"]["replicas"] == 2


def test_headless_service_selects_the_aggregator_pods_and_shippers_balance_over_them(
    render: Callable[..., Rendered],
) -> None:
    r = render("scaling-values")
    headless = r.get("Service", "logship-aggregator-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is False
    pod_labels = r.get("Deployment", "logship-aggregator")["spec"]["template"]["metadata"]["labels"]
    assert headless["spec"]["selector"].items() <= pod_labels.items()
    assert [(p["name"], p["port"], p["targetPort"]) for p in headless["spec"]["ports"]] == [
        ("lumberjack", 5044, "lumberjack")
    ]
    out = shipper_output(r)
    assert out == {**out, "hosts": [HEADLESS], "loadbalance": True, "ttl": "60s"}
    # the ClusterIP Service stays (metrics, ServiceMonitor, `helm test`)
    assert r.get("Service", "logship-aggregator")["spec"].get("clusterIP") != "None"


def test_sidecars_and_explicit_hosts_follow_the_same_rules(render: Callable[..., Rendered]) -> None:
    r = render("sidecar-values", "--set", "aggregator.service.headless.enabled=true")
    sidecar_cm = next(d["metadata"]["name"] for d in r.all("ConfigMap") if d["metadata"]["name"].endswith("sidecar"))
    out = shipper_output(r, sidecar_cm)
    assert out["hosts"] == [HEADLESS] and out["loadbalance"] is True and out["ttl"] == "60s"
    explicit = render("default", "--set", "shipper.outputHosts={logstash.example:5044}")
    assert shipper_output(explicit)["hosts"] == ["logstash.example:5044"]


def test_tls_still_checks_the_service_name_through_the_headless_service(render: Callable[..., Rendered]) -> None:
    r = render("tls-values", "--set", "aggregator.service.headless.enabled=true")
    out = shipper_output(r)
    assert out["hosts"] == [HEADLESS]
    assert out["tls"]["server_name"] == f"logship-aggregator.{NAMESPACE}.svc"


def test_autoscaler_on_cpu_replaces_the_fixed_replicas(render: Callable[..., Rendered]) -> None:
    r = render("scaling-values")
    hpa = r.get("HorizontalPodAutoscaler", "logship-aggregator")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "logship-aggregator",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"] == {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "600m"}}
    assert "replicas" not in r.get("Deployment", "logship-aggregator")["spec"]
    # with per-replica dead-letter volumes the aggregator is a StatefulSet: the autoscaler follows it
    sts = render("scaling-values", "--set", "aggregator.deadLetter.persistence.enabled=true")
    assert sts.get("HorizontalPodAutoscaler", "logship-aggregator")["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"


def test_autoscaler_values_are_checked(helm: str) -> None:
    for bad, where in (
        ("aggregator.autoscaling.minReplicas=0", "minReplicas"),
        ("aggregator.autoscaling.targetCPUAverageValue=70%", "targetCPUAverageValue"),
        ("aggregator.service.headless.enable=true", "additional properties 'enable' not allowed"),
        ("prometheusRule.lagFor=soon", "lagFor"),
    ):
        proc = run_helm(helm, *template_args("default", "--set", bad))
        assert proc.returncode != 0 and where in proc.stderr, (bad, proc.stderr)
    proc = run_helm(
        helm,
        *template_args("default", "--set", "aggregator.autoscaling.enabled=true,aggregator.autoscaling.minReplicas=20"),
    )
    assert proc.returncode != 0 and "minReplicas (20) must not be above maxReplicas (10)" in proc.stderr


def test_alerts_cover_lag_retries_dead_letters_bytes_lost_and_queue_full(render: Callable[..., Rendered]) -> None:
    rule = render("scaling-values").get("PrometheusRule", "logship")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "LogshipShipperLagging",
        "LogshipShipperBytesLost",
        "LogshipShipperDisconnected",
        "LogshipShipperQueueFull",
        "LogshipAggregatorRetrying",
        "LogshipAggregatorDeadLetters",
        "LogshipAggregatorQueueFull",
        "LogshipAggregatorBulkFailing",
    } <= alerts.keys()
    exported = exported_metric_names()
    for name, alert in alerts.items():
        used = set(METRIC.findall(alert["expr"]))
        assert used and used <= exported, f"{name} names metrics nobody exports: {used - exported}"
        assert f'namespace="{NAMESPACE}"' in alert["expr"]
        assert alert["labels"]["team"] == "platform" and alert["labels"]["severity"] in ("warning", "critical")
        assert "{{ $labels.pod }}" in alert["annotations"]["summary"]
    # thresholds follow the values they depend on
    assert alerts["LogshipShipperLagging"]["expr"].endswith("> 536870912")
    assert alerts["LogshipAggregatorQueueFull"]["expr"].endswith(">= 18000")  # 90% of queue_max_events
    changed = render("scaling-values", "--set", "aggregator.config.queue_max_events=1000")
    groups = changed.get("PrometheusRule", "logship")["spec"]["groups"]
    queue = next(r for g in groups for r in g["rules"] if r["alert"] == "LogshipAggregatorQueueFull")
    assert queue["expr"].endswith(">= 900")


def test_rules_only_where_the_crd_exists(helm: str) -> None:
    proc = run_helm(helm, *template_args("default", "-f", str(CHART / "ci" / "scaling-values.yaml")))
    assert proc.returncode == 0, proc.stderr
    assert "kind: PrometheusRule" not in proc.stdout and "kind: HorizontalPodAutoscaler" in proc.stdout


def test_dashboard_configmap_loads_into_grafana_and_plots_real_metrics(render: Callable[..., Rendered]) -> None:
    cm = render("scaling-values").get("ConfigMap", "logship-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["logship.json"])
    assert dash["uid"] == "logship" and dash["panels"]
    exported = exported_metric_names()
    titles = []
    for panel in dash["panels"]:
        titles.append(panel["title"])
        for target in panel["targets"]:
            used = set(METRIC.findall(target["expr"]))
            assert used and used <= exported, f"{panel['title']}: {used - exported}"
    assert any("Load per aggregator" in t for t in titles) and any("lag" in t.lower() for t in titles)
    # the shipped file is the rendered one
    assert json.loads((CHART / "dashboards" / "logship.json").read_text()) == dash


def test_metric_name_check_is_not_a_no_op() -> None:
    exported = exported_metric_names()
    assert "logship_aggregator_events_in_total" in exported and "logship_shipper_bytes_lost_total" in exported
    assert "logship_aggregator_bulk_latency_seconds_bucket" in exported
    assert "logship_aggregator_events_in" not in exported  # a counter is only exposed as _total
