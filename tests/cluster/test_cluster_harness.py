"""The 3-node cluster harness itself: scripts/opensearch.sh --cluster and the session's cluster."""

from __future__ import annotations

import subprocess

import pytest

from tests.cluster.conftest import SCRIPT, WRITE_QUEUE, Cluster, http


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cluster", "c1"], "--cluster needs --seeds"),
        (["--cluster", "c1", "--seeds", "9000,x"], "--cluster needs --seeds"),
        (["--cluster", "c1", "--seeds", "9000"], "--cluster needs --managers"),
        (["--seeds", "9000"], "only make sense with --cluster"),
        (["--cluster", "bad name", "--seeds", "9000", "--managers", "a"], "--cluster may only hold"),
    ],
)
def test_cluster_options_are_checked_before_anything_starts(args: list[str], says: str) -> None:
    proc = subprocess.run(
        [str(SCRIPT), "start", "--name", "never-started", "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0 and says in proc.stderr, proc.stderr


def test_three_nodes_every_one_manager_eligible_with_data_and_the_small_write_queue(
    opensearch_cluster: Cluster,
) -> None:
    nodes = http(f"{opensearch_cluster.urls[1]}/_nodes?filter_path=nodes.*.name,nodes.*.roles,nodes.*.settings")
    by_name = {n["name"]: n for n in nodes["nodes"].values()}
    assert sorted(by_name) == sorted(opensearch_cluster.names)
    for node in by_name.values():
        assert {"cluster_manager", "data"} <= set(node["roles"])
        assert node["settings"]["thread_pool"]["write"]["queue_size"] == str(WRITE_QUEUE)
    stats = http(f"{opensearch_cluster.urls[2]}/_nodes/stats/jvm?filter_path=nodes.*.jvm.mem.heap_max_in_bytes")
    assert {n["jvm"]["mem"]["heap_max_in_bytes"] for n in stats["nodes"].values()} == {512 * 1024 * 1024}
    assert opensearch_cluster.elected_manager() in opensearch_cluster.names
