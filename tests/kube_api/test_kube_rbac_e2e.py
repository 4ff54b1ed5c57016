"""The chart's RBAC is exactly enough; and the real processes end to end: shipper -> aggregator -> OpenSearch."""

from __future__ import annotations

import asyncio
import copy
import logging
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from logship.demo import search
from logship.demo.pipeline import Service, free_port
from shipper.kubernetes.client import LightkubeApi
from tests.kube_api.conftest import NODE, NODE_LABELS, NODE_PROVIDER_ID, ROOT, KubeApi
from tests.kube_api.harness import Node, cid, metric, running_shipper

pytestmark = pytest.mark.slow
CHART = ROOT / "deploy" / "helm" / "logship"


def chart_rbac() -> list[dict[str, Any]]:
    """The chart's ClusterRole and ClusterRoleBinding, as `helm template -n kube-system` renders them."""
    helm = subprocess.run([str(ROOT / "scripts" / "tools.sh"), "helm"], capture_output=True, text=True, timeout=3600)
    assert helm.returncode == 0, helm.stderr[-2000:]
    proc = subprocess.run(
        [
            helm.stdout.strip().splitlines()[-1],
            "template",
            "logship",
            str(CHART),
            "-n",
            "kube-system",
            "--show-only",
            "templates/rbac.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert sorted(d["kind"] for d in docs) == ["ClusterRole", "ClusterRoleBinding"]
    return docs


def chart_cluster_role() -> dict[str, Any]:
    return next(d for d in chart_rbac() if d["kind"] == "ClusterRole")


def grant(api: KubeApi, role: dict[str, Any], user: str) -> None:
    name = f"t-{user}-{uuid.uuid4().hex[:6]}"
    role = {**copy.deepcopy(role), "metadata": {"name": name}}
    api.apply("/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
    api.apply(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


async def test_chart_rbac_is_enough_and_a_role_without_watch_fails_clearly(
    kube_api: KubeApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    role = chart_cluster_role()
    grant(kube_api, role, "shipper")
    broken = copy.deepcopy(role)
    for rule in broken["rules"]:
        rule["verbs"] = [v for v in rule["verbs"] if v != "watch"]
    grant(kube_api, broken, "nowatch")
    ns = f"t-{uuid.uuid4().hex[:8]}"
    kube_api.namespace(ns, {"env": "rbac"})
    c = cid()
    kube_api.create_pod(ns, "rbac-pod", labels={"app": "rbac"})
    await asyncio.sleep(1.0)  # the authorizer's RBAC cache sees the new bindings

    node = Node(tmp_path / "ok")
    async with running_shipper(tmp_path / "ok", node, kube_api, user="shipper") as (shipper, got):
        node.write(node.path(ns, "rbac-pod", "app", c), "with the chart's role")
        await got.wait_for(lambda: len(got.events) == 1, what="event")
        for kind in ("pods", "namespaces", "nodes"):
            assert metric(shipper, "logship_shipper_kubernetes_api_up", resource=kind) == 1
        assert metric(shipper, "logship_shipper_kubernetes_watch_errors_total", resource="pods") == 0
    assert got.events[0]["kubernetes"]["labels"] == {"app": "rbac"}
    assert got.events[0]["kubernetes"]["namespace_labels"]["env"] == "rbac"

    caplog.set_level(logging.ERROR, logger="logship.shipper.kubernetes")
    node = Node(tmp_path / "broken")
    async with running_shipper(tmp_path / "broken", node, kube_api, user="nowatch", wait_for_pod="300ms") as (
        shipper,
        got,
    ):
        node.write(node.path(ns, "rbac-pod", "app", c), "without watch")
        await got.wait_for(lambda: len(got.events) == 1, what="event (never blocked by the API)")
        await got.wait_for(
            lambda: metric(shipper, "logship_shipper_kubernetes_watch_errors_total", resource="pods") >= 1,
            what="watch error",
        )
    lines = [r.getMessage() for r in caplog.records if "list/watch failed" in r.getMessage()]
    assert lines, caplog.text
    assert any("403" in m and 'cannot watch resource "pods"' in m and "ClusterRole needs" in m for m in lines), lines


async def test_in_cluster_service_account_with_the_charts_binding(kube_api: KubeApi, tmp_path: Path) -> None:
    """The chart's ClusterRole + ClusterRoleBinding as rendered, a token of its ServiceAccount, in-cluster config."""
    for doc in chart_rbac():
        path = "clusterroles" if doc["kind"] == "ClusterRole" else "clusterrolebindings"
        kube_api.apply(f"/apis/rbac.authorization.k8s.io/v1/{path}", doc)
    sa = next(d for d in chart_rbac() if d["kind"] == "ClusterRoleBinding")["subjects"][0]
    assert sa["kind"] == "ServiceAccount"
    kube_api.apply(
        f"/api/v1/namespaces/{sa['namespace']}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa["name"]}},
    )
    token = kube_api.request(
        "POST",
        f"/api/v1/namespaces/{sa['namespace']}/serviceaccounts/{sa['name']}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
    )["status"]["token"]
    mounted = tmp_path / "serviceaccount"  # what the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount
    mounted.mkdir()
    (mounted / "token").write_text(token)
    (mounted / "namespace").write_text(sa["namespace"])
    (mounted / "ca.crt").write_bytes(kube_api.ca.read_bytes())
    ns = f"t-{uuid.uuid4().hex[:8]}"
    kube_api.namespace(ns)
    kube_api.create_pod(ns, "in-cluster", labels={"app": "ic"})
    host, port = kube_api.url.removeprefix("https://").split(":")
    mp = pytest.MonkeyPatch()
    mp.setenv("KUBERNETES_SERVICE_HOST", host)
    mp.setenv("KUBERNETES_SERVICE_PORT", port)
    try:
        api = LightkubeApi.from_config(None, NODE, service_account=str(mounted))
        try:
            items, rv = await api.list("pods")
            assert "in-cluster" in [i["metadata"]["name"] for i in items]
            kube_api.create_pod(ns, "in-cluster-2")
            async for type_, obj in api.watch("pods", rv, 5):
                if obj["metadata"].get("name") == "in-cluster-2":
                    assert type_ == "ADDED"
                    break
            else:
                raise AssertionError("the watch ended without the new pod")
            nodes, _ = await api.list("nodes")
            namespaces, _ = await api.list("namespaces")
            assert ns in [n["metadata"]["name"] for n in namespaces] and len(nodes) <= 1
        finally:
            await api.close()
    finally:
        mp.undo()


SHIPPER_YML = """
shipper:
  name: {node}
  inputs:
    - type: containers
      paths: ["{logs}/*.log"]
  scan_interval: 200ms
  registry: {{path: "{data}/registry.json", flush_interval: 200ms}}
  output:
    hosts: ["127.0.0.1:{lj}"]
    backoff: {{initial: 250ms, max: 2s}}
  http: {{host: 127.0.0.1, port: {http}}}
  kubernetes:
    enabled: true
    kubeconfig: {kubeconfig}
    wait_for_pod: 5s
"""


@pytest.mark.e2e
def test_processes_end_to_end_documents_carry_labels_and_owners(
    kube_api: KubeApi, opensearch_url: str, index_prefix: str, tmp_path: Path
) -> None:
    grant(kube_api, chart_cluster_role(), "shipper")
    ns = f"t-{uuid.uuid4().hex[:8]}"
    kube_api.namespace(ns, {"team": "checkout"})
    kube_api.node(NODE, NODE_LABELS, NODE_PROVIDER_ID)
    node = Node(tmp_path)
    pods = {
        "checkout-6f7c9d8b4-abcde": (
            [{"kind": "ReplicaSet", "name": "checkout-6f7c9d8b4"}],
            {"pod-template-hash": "6f7c9d8b4"},
            {},
        ),
        "ledger-0": ([{"kind": "StatefulSet", "name": "ledger"}], {}, {"logship.io/index": "ledger"}),
    }
    files = {}
    for i, (pod, (owners, labels, annos)) in enumerate(pods.items()):
        obj = kube_api.create_pod(
            ns,
            pod,
            labels={"app.kubernetes.io/name": pod.split("-")[0], **labels},
            owners=owners,
            annotations=annos,
        )
        c = cid()
        kube_api.set_running(obj, f"10.244.1.{i + 2}", {"app": c})
        files[pod] = node.path(ns, pod, "app", c)
    time.sleep(1.0)
    lj, ship_http, agg_http = free_port(), free_port(), free_port()
    (tmp_path / "data").mkdir()
    ship_cfg = tmp_path / "shipper.yml"
    ship_cfg.write_text(
        SHIPPER_YML.format(
            node=NODE,
            logs=node.dir,
            data=tmp_path / "data",
            lj=lj,
            http=ship_http,
            kubeconfig=kube_api.kubeconfig("shipper", tmp_path / "kc"),
        )
    )
    env = {
        "OPENSEARCH_URL": opensearch_url,
        "LOGSHIP_PORT": str(lj),
        "AGGREGATOR_HTTP_PORT": str(agg_http),
        "INDEX_PREFIX": index_prefix,
        "LOGSHIP_DATA": str(tmp_path / "data"),
    }
    aggregator = Service(
        "aggregator", ROOT / "deploy" / "local" / "aggregator.yml", env, agg_http, tmp_path / "agg.log"
    )
    shipper = Service("shipper", ship_cfg, env, ship_http, tmp_path / "ship.log")
    try:
        aggregator.start()
        aggregator.wait_ready(60)
        shipper.start()
        shipper.wait_ready(60)
        for pod, path in files.items():
            node.write(path, *(f"{pod} line {n}" for n in range(10)))
        pattern = f"{index_prefix}logstash-logs-*"
        deadline = time.monotonic() + 90
        docs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            shipper.check_alive()
            search.refresh(opensearch_url, pattern)
            docs = list(search.all_documents(opensearch_url, pattern))
            if len(docs) >= 20:
                break
            time.sleep(0.5)
        assert len(docs) == 20, f"{len(docs)} documents\n{shipper.log_tail(20)}\n{aggregator.log_tail(10)}"
        counts = search.counts_per_index(opensearch_url, pattern)
    finally:
        assert shipper.stop(timeout=20) == 0
        aggregator.stop(timeout=20)
    by_pod: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_pod.setdefault(d["kubernetes"]["pod"]["name"], []).append(d)
    checkout, ledger = by_pod["checkout-6f7c9d8b4-abcde"], by_pod["ledger-0"]
    assert len(checkout) == len(ledger) == 10
    for d in checkout:
        k = d["kubernetes"]
        assert k["deployment"] == {"name": "checkout"} and k["labels"]["app_kubernetes_io/name"] == "checkout"
        assert k["namespace_labels"] == {"team": "checkout", "kubernetes_io/metadata_name": ns}
        assert k["pod"]["ip"] == "10.244.1.2"
        assert d["cloud"] == {
            "provider": "aws",
            "availability_zone": "us-east-1a",
            "region": "us-east-1",
            "instance": {"id": "i-0abc123def"},
            "machine": {"type": "m5.large"},
        }
    for d in ledger:
        assert d["kubernetes"]["statefulset"] == {"name": "ledger"}
    # logship.io/index routed the ledger pod to its own family
    ledger_index = [i for i in counts if "logstash-logs-ledger-" in i]
    assert len(ledger_index) == 1 and counts[ledger_index[0]] == 10, counts
    assert sum(v for i, v in counts.items() if "logstash-logs-containers-" in i) == 10, counts
