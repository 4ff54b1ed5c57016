"""Kubernetes metadata against a real kube-apiserver: fields, owners, timing, outages, 410, annotations."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest

from logship.backoff import Backoff
from shipper.kubernetes.client import LightkubeApi
from shipper.kubernetes.watch import ListWatch, Obj
from tests.kube_api.conftest import NODE, NODE_LABELS, NODE_PROVIDER_ID, KubeApi
from tests.kube_api.harness import Node, cid, metric, running_shipper

pytestmark = pytest.mark.slow


def ns_name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cluster(kube_api: KubeApi) -> KubeApi:
    kube_api.node(NODE, NODE_LABELS, NODE_PROVIDER_ID)
    return kube_api


async def test_labels_owners_node_and_cloud_on_every_event(cluster: KubeApi, tmp_path: Path) -> None:
    ns = ns_name()
    cluster.namespace(ns, {"team": "payments", "kubernetes.io/metadata.name": ns})
    node = Node(tmp_path)
    kinds = {
        "web-7d4b9c6f5d-x2x9k": (
            [{"kind": "ReplicaSet", "name": "web-7d4b9c6f5d"}],
            {"pod-template-hash": "7d4b9c6f5d"},
        ),
        "db-0": ([{"kind": "StatefulSet", "name": "db"}], {}),
        "agent-abcde": ([{"kind": "DaemonSet", "name": "agent"}], {}),
        "backup-29012345-q8z7w": ([{"kind": "Job", "name": "backup-29012345", "apiVersion": "batch/v1"}], {}),
    }
    paths = {}
    for i, (pod, (owners, extra_labels)) in enumerate(kinds.items()):
        obj = cluster.create_pod(
            ns,
            pod,
            labels={"app.kubernetes.io/name": pod.split("-")[0], "tier": "backend", **extra_labels},
            owners=owners,
            annotations={"team.example.com/owner": "alice", "other": "x"},
        )
        c = cid()
        cluster.set_running(obj, f"10.244.0.{10 + i}", {"app": c})
        paths[pod] = node.path(ns, pod, "app", c)
    async with running_shipper(tmp_path, node, cluster, annotations=["team.example.com/*"]) as (_shipper, got):
        for pod, p in paths.items():
            node.write(p, *(f"{pod} line {n}" for n in range(5)))
        await got.wait_for(lambda: len(got.events) == 20, what="20 events")
    for e in got.events:
        k = e["kubernetes"]
        pod = k["pod"]["name"]
        assert "metadata" not in k, e  # not partial
        assert k["namespace"] == ns and k["container"]["name"] == "app"
        assert k["pod"]["uid"] and k["pod"]["ip"].startswith("10.244.0.")
        assert k["labels"]["app_kubernetes_io/name"] == pod.split("-")[0] and k["labels"]["tier"] == "backend"
        assert k["annotations"] == {"team_example_com/owner": "alice"}
        assert k["namespace_labels"]["team"] == "payments"
        assert k["node"]["name"] == NODE and k["node"]["labels"]["node_kubernetes_io/instance-type"] == "m5.large"
        assert e["container"]["image"]["name"] == "registry.example/app:1.0"
        assert e["cloud"] == {
            "provider": "aws",
            "region": "us-east-1",
            "availability_zone": "us-east-1a",
            "instance": {"id": "i-0abc123def"},
            "machine": {"type": "m5.large"},
        }
    by_pod = {e["kubernetes"]["pod"]["name"]: e["kubernetes"] for e in got.events}
    assert by_pod["web-7d4b9c6f5d-x2x9k"]["deployment"] == {"name": "web"}
    assert by_pod["db-0"]["statefulset"] == {"name": "db"}
    assert by_pod["agent-abcde"]["daemonset"] == {"name": "agent"}
    assert by_pod["backup-29012345-q8z7w"]["job"] == {"name": "backup-29012345"}
    assert by_pod["backup-29012345-q8z7w"]["cronjob"] == {"name": "backup"}


async def test_pod_created_after_its_file_appears(cluster: KubeApi, tmp_path: Path) -> None:
    ns = ns_name()
    cluster.namespace(ns)
    node = Node(tmp_path)
    c1, c2 = cid(), cid()
    early = node.path(ns, "early", "app", c1)
    async with running_shipper(tmp_path, node, cluster, wait_for_pod="20s") as (shipper, got):
        await asyncio.sleep(1.0)  # the watch has listed; the pods do not exist yet
        node.write(early, "early 0", "early 1")
        await asyncio.sleep(1.0)
        assert got.events == []  # waiting for the pod, within wait_for_pod
        cluster.create_pod(ns, "early", labels={"app": "early"})
        await got.wait_for(lambda: len(got.of("early")) == 2, what="early lines")
    assert all(e["kubernetes"]["labels"] == {"app": "early"} for e in got.of("early"))
    # with a short wait: shipped flagged, enriched once the pod is there
    bnode = Node(tmp_path / "b")
    late = bnode.path(ns, "late", "app", c2)
    async with running_shipper(tmp_path / "b", bnode, cluster, wait_for_pod="500ms") as (shipper, got):
        bnode.write(late, "late 0")
        await got.wait_for(lambda: len(got.of("late")) == 1, what="partial line")
        assert got.of("late")[0]["kubernetes"]["metadata"] == "partial"
        assert got.of("late")[0]["kubernetes"]["pod"]["name"] == "late"  # file-name metadata still there
        assert metric(shipper, "logship_shipper_kubernetes_files_partial_total") == 1
        cluster.create_pod(ns, "late", labels={"app": "late"})
        await asyncio.sleep(1.0)
        bnode.write(late, "late 1")
        await got.wait_for(lambda: len(got.of("late")) == 2, what="enriched line")
    assert got.of("late")[1]["kubernetes"]["labels"] == {"app": "late"}
    assert "metadata" not in got.of("late")[1]["kubernetes"]


async def test_pod_deleted_while_its_last_lines_are_read(cluster: KubeApi, tmp_path: Path) -> None:
    ns = ns_name()
    cluster.namespace(ns)
    node = Node(tmp_path)
    c = cid()
    p = node.path(ns, "short-lived", "app", c)
    cluster.set_running(cluster.create_pod(ns, "short-lived", labels={"app": "sl"}), "10.244.0.99", {"app": c})
    async with running_shipper(tmp_path, node, cluster, deleted_grace="60s") as (shipper, got):
        node.write(p, "before 0")
        await got.wait_for(lambda: len(got.events) == 1, what="first line")
        cluster.delete_pod(ns, "short-lived")
        assert shipper.kubernetes is not None
        cache = shipper.kubernetes.cache
        await got.wait_for(
            lambda: any(p.name == "short-lived" and p.deleted_at is not None for p in cache.pods.values()),
            what="the watch delivering DELETED",
        )
        node.write(p, "after 0", "after 1")
        p.unlink()  # the kubelet removes the log with the pod
        await got.wait_for(lambda: len(got.events) == 3, what="last lines")
    for e in got.events:
        assert e["kubernetes"]["labels"] == {"app": "sl"} and e["kubernetes"]["pod"]["ip"] == "10.244.0.99", e


async def test_apiserver_down_events_flow_flagged_then_enriched_again(cluster: KubeApi, tmp_path: Path) -> None:
    ns = ns_name()
    cluster.namespace(ns)
    node = Node(tmp_path)
    ca, cb = cid(), cid()
    known, unknown = node.path(ns, "known", "app", ca), node.path(ns, "unknown", "app", cb)
    cluster.create_pod(ns, "known", labels={"app": "known"})
    async with running_shipper(tmp_path, node, cluster, wait_for_pod="500ms") as (shipper, got):
        node.write(known, "known 0")
        await got.wait_for(lambda: len(got.events) == 1, what="first line")
        cluster.stop("apiserver")
        try:
            node.write(known, "known 1")  # a pod seen before: still enriched from the cache
            node.write(unknown, "unknown 0")  # a new pod: shipped at once, flagged
            await got.wait_for(lambda: len(got.events) == 3, within=20, what="lines during the outage")
            await got.wait_for(
                lambda: metric(shipper, "logship_shipper_kubernetes_api_up", resource="pods") == 0, what="api_up 0"
            )
        finally:
            cluster.start_apiserver()
        cluster.create_pod(ns, "unknown", labels={"app": "unknown"})
        await got.wait_for(
            lambda: metric(shipper, "logship_shipper_kubernetes_api_up", resource="pods") == 1,
            within=30,
            what="api_up 1",
        )
        await asyncio.sleep(1.0)
        node.write(unknown, "unknown 1")
        node.write(known, "known 2")
        await got.wait_for(lambda: len(got.events) == 5, what="lines after the outage")
        assert metric(shipper, "logship_shipper_kubernetes_watch_errors_total", resource="pods") >= 1
    assert [e["kubernetes"].get("labels") for e in got.of("known")] == [{"app": "known"}] * 3
    unknown_events = got.of("unknown")
    assert unknown_events[0]["kubernetes"]["metadata"] == "partial"
    assert unknown_events[1]["kubernetes"]["labels"] == {"app": "unknown"}


class Sink:
    def __init__(self) -> None:
        self.replaced: list[list[str]] = []
        self.applied: list[tuple[str, str]] = []

    def replace(self, kind: str, items: list[Obj], now: float) -> None:
        self.replaced.append(sorted(i["metadata"]["name"] for i in items))

    def apply(self, kind: str, type_: str, obj: Obj, now: float) -> None:
        self.applied.append((type_, obj["metadata"]["name"]))


async def test_410_gone_relists(cluster: KubeApi, tmp_path: Path) -> None:
    """A watch resumed from a resourceVersion the server no longer has gets 410 Gone, then lists again."""
    ns = ns_name()
    cluster.namespace(ns)
    api = LightkubeApi.from_config(str(cluster.kubeconfig("admin", tmp_path / "kc")), NODE)
    try:
        cluster.create_pod(ns, "first")
        items, rv = await api.list("pods")
        assert "first" in [i["metadata"]["name"] for i in items]
        for n in range(3):
            cluster.create_pod(ns, f"other-{n}", node="node-b")  # moves the resourceVersion on
        cluster.create_pod(ns, "second")
        cluster.compact_etcd()
        cluster.restart_apiserver()  # its watch cache starts at the compacted revision: rv is gone
        sink = Sink()
        lw = ListWatch(api, "pods", sink, timeout=2, backoff=Backoff(0.1, 0.5))
        lw.resource_version = rv
        for _ in range(3):
            await lw.step()
            if sink.replaced:
                break
        assert lw.relists_gone == 1, (lw.errors, lw.resource_version)
        assert "second" in sink.replaced[-1] and "other-0" not in sink.replaced[-1]
    finally:
        await api.close()


async def test_exclude_multiline_and_invalid_annotations(
    cluster: KubeApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ns = ns_name()
    cluster.namespace(ns)
    node = Node(tmp_path)
    ids = {k: cid() for k in ("muted", "app", "sidecar", "java", "bad")}
    cluster.create_pod(ns, "muted", annotations={"logship.io/exclude": "true"})
    cluster.create_pod(
        ns, "mixed", containers={"app": "a:1", "sidecar": "s:1"}, annotations={"logship.io/exclude-sidecar": "true"}
    )
    cluster.create_pod(
        ns,
        "java",
        annotations={
            "logship.io/multiline.start_pattern": r"^\d{4}-\d{2}-\d{2} ",
            "logship.io/index": "payments",
            "logship.io/tags": "java,team-a",
        },
    )
    cluster.create_pod(
        ns, "bad", annotations={"logship.io/multiline.start_pattern": "([unclosed", "logship.io/exclude": "perhaps"}
    )
    caplog.set_level(logging.INFO, logger="logship.shipper.kubernetes")
    async with running_shipper(tmp_path, node, cluster) as (shipper, got):
        node.write(node.path(ns, "muted", "app", ids["muted"]), "muted 0")
        node.write(node.path(ns, "mixed", "app", ids["app"]), "mixed-app 0")
        node.write(node.path(ns, "mixed", "sidecar", ids["sidecar"]), "mixed-sidecar 0")
        node.write(
            node.path(ns, "java", "app", ids["java"]),
            "2026-03-01 10:00:00 ERROR failed",
            "java.lang.IllegalStateException: boom",
            "\tat com.example.Foo.bar(Foo.java:10)",
            "\tat com.example.Main.main(Main.java:3)",
            "2026-03-01 10:00:01 INFO next",
        )
        node.write(node.path(ns, "bad", "app", ids["bad"]), "bad 0", "bad 1")
        await got.wait_for(
            lambda: (
                len(got.of("2026-03-01 10:00:01")) == 1 and len(got.of("bad")) == 2 and len(got.of("mixed-app")) == 1
            ),
            what="events",
        )
        await asyncio.sleep(1.0)  # give the excluded files every chance to show up
        assert (
            metric(
                shipper,
                "logship_shipper_kubernetes_invalid_annotations_total",
                annotation="logship.io/multiline.start_pattern",
            )
            == 1
        )
        assert metric(shipper, "logship_shipper_kubernetes_files_excluded_total") == 2
    assert got.of("muted") == [] and got.of("mixed-sidecar") == []
    java = [e for e in got.events if e["kubernetes"]["pod"]["name"] == "java"]
    assert [e["message"].split("\n")[0] for e in java] == [
        "2026-03-01 10:00:00 ERROR failed",
        "2026-03-01 10:00:01 INFO next",
    ]
    assert java[0]["message"].count("\n") == 3 and "multiline" in java[0]["log"]["flags"]
    assert java[0]["tags"] == ["containers", "java", "team-a"] and java[0]["@metadata"]["index_family"] == "payments"
    assert [e["message"] for e in got.of("bad")] == ["bad 0", "bad 1"]  # the invalid pattern is ignored
    logged = caplog.text
    assert "logship.io/multiline.start_pattern" in logged and "not a valid regular expression" in logged
    assert "logship.io/exclude" in logged and "'perhaps' is not true or false" in logged
