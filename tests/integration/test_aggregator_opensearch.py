"""The aggregator's pipeline against the real OpenSearch: routing and dates, resent windows, dead letters,
the index template."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from opensearchpy import AsyncOpenSearch

from aggregator.app import Aggregator
from aggregator.config import AggregatorConfig
from aggregator.template import install_template, template_body

pytestmark = pytest.mark.integration


def make_config(url: str, prefix: str, tmp_path: Path, **over: Any) -> AggregatorConfig:
    raw: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "routes": [
            {"tag": "containers", "index": f"{prefix}containers-%{{+YYYY.MM.dd}}"},
            {"tag": "app", "index": f"{prefix}app-%{{+YYYY.MM.dd}}"},
        ],
        "default_index": f"{prefix}unrouted-%{{+YYYY.MM.dd}}",
        "opensearch": {"hosts": [url]},
        "bulk": {"max_docs": 500, "max_delay": "200ms", "backoff": {"initial": "100ms", "max": "1s"}},
        "template": {"install": False},
        "dead_letter": {"path": str(tmp_path / "dlq.ndjson")},
        "http": {"host": "127.0.0.1", "port": 0},
        "shutdown_timeout": "10s",
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return AggregatorConfig.from_dict(raw)


async def counts(client: AsyncOpenSearch, prefix: str) -> dict[str, int]:
    await client.indices.refresh(index=f"{prefix}*")
    rows = await client.cat.indices(index=f"{prefix}*", format="json", h="index,docs.count")
    return {r["index"]: int(r["docs.count"]) for r in rows}


def event(i: int, ts: str | None, tags: list[str], **extra: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"message": f"line {i}", "tags": tags, "@metadata": {"_id": f"id-{i}"}, **extra}
    if ts is not None:
        e["@timestamp"] = ts
    return e


async def test_routes_by_tag_and_utc_date(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    agg = Aggregator(make_config(opensearch_url, index_prefix, tmp_path))
    agg.pipeline.start()
    today = datetime.now(UTC).strftime("%Y.%m.%d")
    events = [
        event(1, "2025-12-31T23:59:59.999Z", ["containers"]),
        event(2, "2026-01-01T00:00:00.000Z", ["containers"]),
        event(3, "2026-01-01T00:30:00+02:00", ["containers"]),  # 2025-12-31T22:30Z
        event(4, "2025-12-31T20:30:00-05:00", ["app"]),  # 2026-01-01T01:30Z
        event(5, "2026-01-01T00:00:00.000Z", ["other", "app", "containers"]),  # first route wins: containers
        event(6, "2026-01-01T12:00:00.000Z", ["nothing-routes-me"]),
        event(7, None, ["app"]),
        event(8, "not a time", ["app"]),
    ]
    await agg.pipeline.submit(events)
    got = await counts(os_client, index_prefix)
    assert got == {
        f"{index_prefix}containers-2025.12.31": 2,
        f"{index_prefix}containers-2026.01.01": 2,
        f"{index_prefix}app-2026.01.01": 1,
        f"{index_prefix}unrouted-2026.01.01": 1,
        f"{index_prefix}app-{today}": 2,
    }
    doc = await os_client.get(index=f"{index_prefix}containers-2025.12.31", id="id-3")
    assert "@metadata" not in doc["_source"]
    assert doc["_source"]["@timestamp"] == "2026-01-01T00:30:00+02:00"
    bad = (await os_client.get(index=f"{index_prefix}app-{today}", id="id-8"))["_source"]
    assert "_timestampparsefailure" in bad["tags"]
    assert bad["logship"]["invalid_timestamp"] == "not a time"
    assert bad["@timestamp"].startswith(datetime.now(UTC).strftime("%Y-%m-%d"))
    missing = (await os_client.get(index=f"{index_prefix}app-{today}", id="id-7"))["_source"]
    assert "_timestampparsefailure" in missing["tags"]
    assert agg.metrics.indexed._value.get() == 8
    await agg.pipeline.close(5)
    await agg.sink.close()


async def test_resent_window_is_indexed_once(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    agg = Aggregator(make_config(opensearch_url, index_prefix, tmp_path))
    agg.pipeline.start()

    def window() -> list[dict[str, Any]]:
        return [event(i, "2026-03-01T10:00:00.000Z", ["app"]) for i in range(300)]

    await agg.pipeline.submit(window())
    assert await counts(os_client, index_prefix) == {f"{index_prefix}app-2026.03.01": 300}
    await agg.pipeline.submit(window())  # the shipper resends after a lost ack
    assert await counts(os_client, index_prefix) == {f"{index_prefix}app-2026.03.01": 300}
    assert agg.metrics.duplicates._value.get() == 300
    assert agg.metrics.dead_lettered._value.get() == 0
    await agg.pipeline.close(5)
    await agg.sink.close()


async def test_events_without_id_get_a_stable_one(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    """A real Filebeat sends no @metadata._id: the id comes from host, file and offset."""
    agg = Aggregator(make_config(opensearch_url, index_prefix, tmp_path))
    agg.pipeline.start()

    def window() -> list[dict[str, Any]]:
        return [
            {
                "@timestamp": "2026-03-01T10:00:00.000Z",
                "message": f"m{i}",
                "tags": ["containers"],
                "host": {"name": "node-1"},
                "log": {"file": {"path": "/var/log/containers/a.log"}, "offset": i * 100},
            }
            for i in range(50)
        ]

    await agg.pipeline.submit(window())
    await agg.pipeline.submit(window())
    assert await counts(os_client, index_prefix) == {f"{index_prefix}containers-2026.03.01": 50}
    await agg.pipeline.close(5)
    await agg.sink.close()


async def test_mapping_conflict_is_dead_lettered_rest_indexed(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    index = f"{index_prefix}app-2026.03.02"
    await os_client.indices.create(
        index=index, body={"mappings": {"properties": {"fields": {"properties": {"n": {"type": "long"}}}}}}
    )
    agg = Aggregator(make_config(opensearch_url, index_prefix, tmp_path))
    agg.pipeline.start()
    bad = {7, 21, 40}
    events = [
        event(i, "2026-03-02T08:00:00.000Z", ["app"], fields={"n": f"not-a-number-{i}" if i in bad else i})
        for i in range(50)
    ]
    await asyncio.wait_for(agg.pipeline.submit(events), 30)  # the window completes (would be acked)
    assert await counts(os_client, index_prefix) == {index: 47}
    lines = (tmp_path / "dlq.ndjson").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert sorted(r["event"]["fields"]["n"] for r in records) == sorted(f"not-a-number-{i}" for i in bad)
    for r in records:
        assert r["index"] == index
        assert r["status"] == 400
        assert r["error"]["type"] == "mapper_parsing_exception"
        assert r["event"]["tags"] == ["app"]
        assert "@metadata" not in r["event"]
    assert agg.metrics.dead_lettered._value.get() == 3
    assert agg.metrics.indexed._value.get() == 47
    await agg.pipeline.close(5)
    await agg.sink.close()


async def test_template_maps_spec_fields(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    name = f"{index_prefix}tmpl"
    try:
        await install_template(os_client, name, [f"{index_prefix}*"], 1, 0)
        await install_template(os_client, name, [f"{index_prefix}*"], 1, 0)  # an update is fine too
        agg = Aggregator(make_config(opensearch_url, index_prefix, tmp_path))
        agg.pipeline.start()
        await agg.pipeline.submit(
            [
                event(
                    1,
                    "2026-03-03T08:00:00.000Z",
                    ["containers"],
                    kubernetes={"pod": {"name": "web-1"}, "namespace": "prod", "labels": {"app": "web"}},
                    container={"id": "abc", "runtime": "containerd"},
                    host={"name": "node-1"},
                    log={"file": {"path": "/var/log/containers/x.log"}, "offset": 12},
                    stream="stdout",
                    agent={"type": "logship", "version": "0.1.0"},
                )
            ]
        )
        index = f"{index_prefix}containers-2026.03.03"
        mapping = (await os_client.indices.get_mapping(index=index))[index]["mappings"]["properties"]
        assert mapping["@timestamp"]["type"] == "date"
        assert mapping["message"]["type"] == "text"
        assert mapping["kubernetes"]["properties"]["pod"]["properties"]["name"]["type"] == "keyword"
        assert mapping["kubernetes"]["properties"]["labels"]["properties"]["app"]["type"] == "keyword"
        assert mapping["container"]["properties"]["id"]["type"] == "keyword"
        assert mapping["host"]["properties"]["name"]["type"] == "keyword"
        assert mapping["log"]["properties"]["offset"]["type"] == "long"
        assert mapping["log"]["properties"]["file"]["properties"]["path"]["type"] == "keyword"
        assert mapping["tags"]["type"] == "keyword"
        assert mapping["stream"]["type"] == "keyword"
        settings = (await os_client.indices.get_settings(index=index))[index]["settings"]["index"]
        assert settings["number_of_replicas"] == "0"
        await agg.pipeline.close(5)
        await agg.sink.close()
    finally:
        await os_client.indices.delete_index_template(name=name, ignore=[404])


def test_template_body_default_pattern() -> None:
    from aggregator.app import _patterns

    cfg = AggregatorConfig()
    assert _patterns(cfg) == ["logstash-logs-*"]
    body = template_body(["logstash-logs-*"], 1, 1)
    assert body["index_patterns"] == ["logstash-logs-*"]


async def test_item_429_retried_alone_until_accepted(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    """A read-only-allow-delete block (what OpenSearch sets at the disk flood stage) answers 429 per
    item: those items are resent (and only those) until the block goes; the window waits meanwhile."""
    blocked = f"{index_prefix}app-2026.03.04"
    await os_client.indices.create(index=blocked, body={"settings": {"number_of_replicas": 0}})
    await os_client.indices.put_settings(index=blocked, body={"index.blocks.read_only_allow_delete": True})
    agg = Aggregator(make_config(opensearch_url, index_prefix, tmp_path))
    agg.pipeline.start()
    events = [event(i, "2026-03-04T10:00:00Z", ["app"]) for i in range(30)]
    events += [event(100 + i, "2026-03-04T10:00:00Z", ["containers"]) for i in range(20)]
    window = asyncio.create_task(agg.pipeline.submit(events))
    await asyncio.sleep(2.0)
    assert not window.done()  # not acknowledged while 30 events wait
    assert await counts(os_client, index_prefix) == {blocked: 0, f"{index_prefix}containers-2026.03.04": 20}
    assert agg.metrics.retried.labels("429")._value.get() >= 30
    await os_client.indices.put_settings(index=blocked, body={"index.blocks.read_only_allow_delete": None})
    await asyncio.wait_for(window, 30)
    assert await counts(os_client, index_prefix) == {blocked: 30, f"{index_prefix}containers-2026.03.04": 20}
    assert agg.metrics.indexed._value.get() == 50
    assert agg.metrics.duplicates._value.get() == 0  # the 20 accepted events were never resent
    await agg.pipeline.close(5)
    await agg.sink.close()


async def test_gzip_bodies(opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch) -> None:
    agg = Aggregator(make_config(opensearch_url, index_prefix, tmp_path, bulk={"gzip": True, "max_docs": 5000}))
    agg.pipeline.start()
    big = "y" * 200
    await agg.pipeline.submit([event(i, "2026-03-05T10:00:00Z", ["app"], text=big) for i in range(2000)])
    assert await counts(os_client, index_prefix) == {f"{index_prefix}app-2026.03.05": 2000}
    await agg.pipeline.close(5)
    await agg.sink.close()


async def test_ism_policy_or_a_clear_warning(
    opensearch_url: str, index_prefix: str, os_client: AsyncOpenSearch, caplog: pytest.LogCaptureFixture
) -> None:
    from aggregator.template import has_ism, install_ism_policy

    name = f"{index_prefix}retention"
    installed = await install_ism_policy(os_client, name, [f"{index_prefix}*"], 30 * 86400)
    if await has_ism(os_client):
        assert installed
        policy = await os_client.transport.perform_request("GET", f"/_plugins/_ism/policies/{name}")
        assert policy["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"] == "720h"
        await os_client.transport.perform_request("DELETE", f"/_plugins/_ism/policies/{name}")
    else:  # the integration-test distribution has no ISM plugin
        assert installed is False
        assert "will NOT be deleted automatically" in caplog.text


async def test_several_hosts_one_down(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    cfg = make_config(opensearch_url, index_prefix, tmp_path, opensearch={"hosts": [dead, opensearch_url]})
    agg = Aggregator(cfg)
    agg.pipeline.start()
    for w in range(4):
        await asyncio.wait_for(
            agg.pipeline.submit([event(w * 100 + i, "2026-03-06T10:00:00Z", ["app"]) for i in range(100)]), 30
        )
    assert await counts(os_client, index_prefix) == {f"{index_prefix}app-2026.03.06": 400}
    await agg.pipeline.close(5)
    await agg.sink.close()


async def test_red_index_retries_its_items_and_keeps_the_node_in(
    opensearch_url: str, index_prefix: str, tmp_path: Path, os_client: AsyncOpenSearch
) -> None:
    """An index whose primary is unassigned (red: its node died before a replica had started) answers
    503 per item once `_bulk?timeout` (half of opensearch.timeout) runs out, before the client's own
    timeout: only its items wait and are resent, the other events of the window are indexed at once,
    and the node that coordinated the request stays in (it answered)."""
    red = f"{index_prefix}app-2026.03.07"
    await os_client.indices.create(
        index=red,
        body={"settings": {"number_of_replicas": 0, "index.routing.allocation.require._name": "no-such-node"}},
        params={"wait_for_active_shards": "0"},
    )
    agg = Aggregator(make_config(opensearch_url, index_prefix, tmp_path, opensearch={"timeout": "10s"}))
    assert agg.sink.bulk_params["timeout"] == "5000ms" and agg.sink.request_timeout == 10.0
    agg.pipeline.start()
    events = [event(i, "2026-03-07T10:00:00Z", ["app"]) for i in range(30)]
    events += [event(100 + i, "2026-03-07T10:00:00Z", ["containers"]) for i in range(20)]
    window = asyncio.create_task(agg.pipeline.submit(events))
    healthy = f"{index_prefix}containers-2026.03.07"
    for _ in range(100):  # the 20 of the healthy index arrive while the red one holds its 30
        await asyncio.sleep(0.1)
        if agg.metrics.indexed._value.get() == 20:
            break
    await asyncio.sleep(12.0)  # longer than opensearch.timeout: a timeout would have taken the node out
    assert not window.done()
    await os_client.indices.refresh(index=healthy)
    assert (await os_client.count(index=healthy))["count"] == 20
    assert agg.metrics.retried.labels("503")._value.get() >= 30
    assert agg.sink.pool.healthy == [opensearch_url]
    assert agg.metrics.node_up.labels(opensearch_url)._value.get() == 1
    # the node that held the primary is back: the waiting items go in, once
    await os_client.indices.put_settings(index=red, body={"index.routing.allocation.require._name": None})
    await asyncio.wait_for(window, 60)
    assert await counts(os_client, index_prefix) == {red: 30, healthy: 20}
    assert agg.metrics.indexed._value.get() == 50
    assert agg.metrics.duplicates._value.get() == 0  # the 20 accepted events were never resent
    await agg.pipeline.close(5)
    await agg.sink.close()
