"""The harness itself: a real node that takes writes and answers reads, isolated per test."""

from __future__ import annotations

import os
import subprocess

from opensearchpy import AsyncOpenSearch
from opensearchpy.helpers import async_bulk

from tests.conftest import OPENSEARCH_SCRIPT


async def test_write_refresh_read_back(os_client: AsyncOpenSearch, index_prefix: str) -> None:
    index = f"{index_prefix}harness"
    docs = [{"_index": index, "_id": f"doc-{i}", "message": f"line {i}", "n": i} for i in range(50)]
    ok, errors = await async_bulk(os_client, docs)
    assert ok == 50 and not errors
    await os_client.indices.refresh(index=index)

    count = await os_client.count(index=index)
    assert count["count"] == 50
    got = await os_client.get(index=index, id="doc-17")
    assert got["_source"] == {"message": "line 17", "n": 17}
    hits = await os_client.search(index=index, body={"query": {"match": {"message": "42"}}})
    assert [h["_id"] for h in hits["hits"]["hits"]] == ["doc-42"]


async def test_node_is_the_opensearch_version_under_test(os_client: AsyncOpenSearch) -> None:
    """2.19 by default; 3.3.0 in the second pass (LOGSHIP_TEST_OPENSEARCH_VERSION)."""
    info = await os_client.info()
    assert info["version"]["distribution"] == "opensearch"
    wanted = os.environ.get("LOGSHIP_TEST_OPENSEARCH_VERSION")
    if os.environ.get("OPENSEARCH_URL"):
        return  # an external node: whatever version it runs
    if wanted:
        assert info["version"]["number"] == wanted
    else:
        assert info["version"]["number"].startswith("2.19.")


def test_script_start_twice_and_restart(tmp_path: object) -> None:
    """A second start reports the running node instead of failing; stop/start cycles work."""

    # an instance per version: data written by 3.x cannot be opened by 2.19 (a later run on this machine)
    version = os.environ.get("LOGSHIP_TEST_OPENSEARCH_VERSION")
    env = {k: v for k, v in os.environ.items() if k != "OPENSEARCH_VERSION"}
    if version:
        env["OPENSEARCH_VERSION"] = version
    name = f"pytest-script-{version or 'default'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(OPENSEARCH_SCRIPT), *args, "--name", name, "--port", "9202"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )

    try:
        for attempt in range(2):
            # the first start wipes what an earlier run left; the second restarts on the data it kept
            first = run("start", "--fresh") if attempt == 0 else run("start")
            assert first.returncode == 0, first.stderr
            assert first.stdout.strip() == "http://127.0.0.1:9202"
            second = run("start")
            assert second.returncode == 0
            assert "already running" in second.stderr
            assert run("status").returncode == 0
            stopped = run("stop")
            assert stopped.returncode == 0 and "stopped" in stopped.stderr
            assert run("status").returncode == 3
    finally:
        run("stop")
