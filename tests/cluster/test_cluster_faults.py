"""Faults of a real 3-node OpenSearch cluster under a running pipeline (real `logship aggregator` and
`logship shipper` processes, generated EKS-node logs), each ending with an exact count: every event
once (missing 0, duplicates 0, checked by the generator's per-stream sequence markers).

* a node SIGKILLed mid-stream (the one holding most primaries: its replicas are promoted) and
  restarted on its data;
* the elected cluster-manager paused (SIGSTOP) for LOGSHIP_CLUSTER_PAUSE_S (default 30 s, or the
  soak's LOGSHIP_FAULT_OUTAGE_S if longer);
* the cluster pushed into `429 es_rejected_execution_exception` by its small write queue.

The cluster is shared by the session (conftest.py); each test writes to indices of its own.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from logship.demo.pipeline import Service, http_get
from logship.demo.verify import Report
from tests.cluster.conftest import Cluster, ClusterRig, http
from tests.faults.rig import OUTAGE_S, RATE, RUN_S, wait_for

pytestmark = pytest.mark.slow

PAUSE_S = float(os.environ.get("LOGSHIP_CLUSTER_PAUSE_S", str(max(30.0, OUTAGE_S))))


def labelled(service: Service, name: str) -> dict[tuple[str, ...], float]:
    """One metric's samples by label values ({} if the endpoint does not answer)."""
    try:
        status, body = http_get(f"{service.base_url}/metrics", timeout=2.0)
    except OSError:
        return {}
    out: dict[tuple[str, ...], float] = {}
    if status != 200:
        return out
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sample.labels.values())] = sample.value
    return out


def nodes_up(rig: ClusterRig) -> dict[str, float]:
    assert rig.aggregator is not None
    return {k[0]: v for k, v in labelled(rig.aggregator, "logship_aggregator_opensearch_node_up").items()}


def indexed(rig: ClusterRig) -> float:
    assert rig.aggregator is not None
    return rig.aggregator.metrics().get("logship_aggregator_events_indexed_total", -1.0)


def primaries_by_node(
    cluster: Cluster, prefix: str, via: str, indices: set[str] | None = None
) -> tuple[dict[str, int], set[str]]:
    """Primaries per node of the test's indices (only `indices`, if given), and the indices seen."""
    rows = http(f"{via}/_cat/shards/{prefix}*?format=json&h=index,prirep,node,state")
    out = {name: 0 for name in cluster.names}
    seen: set[str] = set()
    for row in rows:
        seen.add(str(row.get("index")))
        if indices is not None and row.get("index") not in indices:
            continue
        if row.get("prirep") == "p" and row.get("node") in out:
            out[row["node"]] += 1
    return out, seen


def every_event_once(rig: ClusterRig) -> Report:
    """Wait for every generated event in OpenSearch: all there, none missing, none twice."""
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"] and not report.missing and not report.duplicates
    return report


def test_a_node_killed_mid_stream_and_restarted(cluster_rig: ClusterRig, opensearch_cluster: Cluster) -> None:
    rig, cluster = cluster_rig, opensearch_cluster
    rig.start_aggregator()
    rig.start_shipper()
    rig.generate(duration=RUN_S + OUTAGE_S + 10, seed=71)
    wait_for(lambda: rig.count() > 200, 60, "documents before the kill", detail=rig.diagnostics)
    # every primary has a started replica to promote: a replica still recovering from the victim would
    # leave its index red (no copy at all) until the victim is back, which is not this fault
    cluster.wait_health("green", nodes=3, index=rig.prefix + "*")
    assert set(nodes_up(rig).values()) == {1.0} and len(nodes_up(rig)) == 3
    primaries, before_kill = primaries_by_node(cluster, rig.prefix, cluster.urls[0])
    victim = max(primaries, key=lambda n: primaries[n])
    assert primaries[victim] >= 1, primaries
    rig.url = cluster.live_url(avoid=victim)
    os.kill(cluster.pid(victim), signal.SIGKILL)
    killed = time.monotonic()
    try:
        # the aggregator takes the node out and goes on indexing through the other two
        wait_for(
            lambda: nodes_up(rig).get(cluster.url_of(victim)) == 0.0,
            60,
            "the dead node taken out",
            detail=rig.diagnostics,
        )
        before = indexed(rig)
        wait_for(
            lambda: indexed(rig) > before + 100, 90, "indexing to go on without the dead node", detail=rig.diagnostics
        )
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - killed)))
        # its primaries were promoted elsewhere: nothing of the test's indices is on it any more (counted over
        # the indices that existed at the kill: a new day's index may have been created since)
        survivors, _ = primaries_by_node(cluster, rig.prefix, rig.url, before_kill)
        assert survivors[victim] == 0 and sum(survivors.values()) == sum(primaries.values()), survivors
    finally:
        cluster.start(victim)
    # back in the cluster, and back in the aggregator's rotation once a probe answers
    wait_for(
        lambda: nodes_up(rig).get(cluster.url_of(victim)) == 1.0,
        120,
        "the restarted node back in",
        detail=rig.diagnostics,
    )
    report = every_event_once(rig)
    cluster.wait_health("green", nodes=3)
    print(
        f"\nkill: {report.expected} events, {report.found} found, {len(report.missing)} missing, "
        f"{sum(report.duplicates.values())} duplicates; victim {victim} held {primaries[victim]} primaries"
    )


def test_the_elected_cluster_manager_paused(cluster_rig: ClusterRig, opensearch_cluster: Cluster) -> None:
    rig, cluster = cluster_rig, opensearch_cluster
    rig.start_aggregator()
    rig.start_shipper()
    rig.generate(duration=RUN_S + PAUSE_S + 5, seed=72)
    wait_for(lambda: rig.count() > 200, 60, "documents before the pause", detail=rig.diagnostics)
    manager = cluster.elected_manager()
    rig.url = cluster.live_url(avoid=manager)
    pid = cluster.pid(manager)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(PAUSE_S)
        assert rig.aggregator is not None and rig.shipper is not None
        rig.aggregator.check_alive()
        rig.shipper.check_alive()
        up_during = nodes_up(rig)
    finally:
        os.kill(pid, signal.SIGCONT)
    # a paused node accepts connections and never answers: a timeout, and the probes it starts, take it
    # out. Requests through the other nodes time out too (their writes wait for shard copies on the
    # paused node), but those nodes answer the probes and stay in.
    assert up_during == {url: 0.0 if url == cluster.url_of(manager) else 1.0 for url in cluster.urls}, up_during
    wait_for(
        lambda: nodes_up(rig).get(cluster.url_of(manager)) == 1.0,
        120,
        "the resumed node back in",
        detail=rig.diagnostics,
    )
    report = every_event_once(rig)
    cluster.wait_health("green", nodes=3)
    print(
        f"\npause {PAUSE_S:.0f}s of {manager}: {report.expected} events, {report.found} found, "
        f"{len(report.missing)} missing, {sum(report.duplicates.values())} duplicates; "
        f"manager after: {cluster.elected_manager()}"
    )


def test_write_queues_full_429_only_rejected_items_resent(cluster_rig: ClusterRig) -> None:
    rig = cluster_rig
    # many small bulks at once against one write thread and a short queue per node
    rig.start_aggregator(bulk={"concurrency": 16, "max_docs": 100, "max_delay": "50ms"})
    # a backlog first, so the shipper sends full windows (each 21 bulks, 16 of them at once): a shipper
    # that keeps up with a live writer sends small windows, which a fast host indexes without queueing
    rig.generate(rate=RATE * 8, duration=RUN_S / 2, seed=73)
    rig.manifest()
    rig.start_shipper()
    report = every_event_once(rig)
    assert rig.aggregator is not None
    retried = labelled(rig.aggregator, "logship_aggregator_events_retried_total")
    rejected = retried.get(("429",), 0.0)
    assert rejected > 0, f"the cluster never answered 429: {retried}"
    # the rejections were per document and only those were resent: nothing was dead-lettered
    assert rig.aggregator.metrics().get("logship_aggregator_events_dead_lettered_total", 0.0) == 0.0
    partial = labelled(rig.aggregator, "logship_aggregator_bulk_requests_total").get(("partial",), 0.0)
    # the bulk requests were spread over the three nodes
    per_node = labelled(rig.aggregator, "logship_aggregator_opensearch_node_requests_total")
    answered = {node: n for (node, result), n in per_node.items() if result == "answered"}
    assert len(answered) == 3 and min(answered.values()) >= 0.2 * max(answered.values()), per_node
    print(
        f"\n429: {report.expected} events, {report.found} found, {len(report.missing)} missing, "
        f"{sum(report.duplicates.values())} duplicates; {rejected:.0f} event deliveries rejected with 429, "
        f"{partial:.0f} partially rejected bulks; bulk requests per node {sorted(answered.values())}"
    )
