"""Event shape (SPEC §4) and Kubernetes metadata."""

from __future__ import annotations

import orjson

from logship import __version__
from shipper.event import EventBuilder, TimestampExtractor, kubernetes_from_path
from shipper.formats import Record
from shipper.identity import FileIdentity

CID = "a" * 64
PATH = f"/var/log/containers/web-7d4b9_shop_nginx-{CID}.log"


def test_kubernetes_from_container_symlink_name() -> None:
    assert kubernetes_from_path(PATH) == ({"pod": "web-7d4b9", "namespace": "shop", "container": "nginx"}, CID)
    pods = "/var/log/pods/shop_web-7d4b9_0f1e2d3c-aaaa-bbbb-cccc-123456789abc/nginx/0.log"
    assert kubernetes_from_path(pods) == ({"pod": "web-7d4b9", "namespace": "shop", "container": "nginx"}, None)
    assert kubernetes_from_path("/app/logs/log-2026-01-01.log") == ({}, None)


def test_container_event_shape() -> None:
    ident = FileIdentity(1, 2, b"x" * 2000, "node-1")
    b = EventBuilder(
        path=PATH,
        identity=ident,
        host_name="node-1",
        tags=["containers"],
        fields={"env": "prod"},
        input_type="containers",
        sidecar=False,
    )
    b.set_runtime("docker")
    rec = Record(1234, 1300, 1300, 'he said "hi"\tü', "stderr", "2026-01-01T12:00:00.123Z", ("truncated",))
    ev = orjson.loads(b.build(rec, "2026-09-09T00:00:00.000Z"))
    assert ev == {
        "@timestamp": "2026-01-01T12:00:00.123Z",
        "message": 'he said "hi"\tü',
        "stream": "stderr",
        "log": {"file": {"path": PATH}, "offset": 1234, "flags": ["truncated"]},
        "@metadata": {"_id": ident.event_id(1234)},
        "tags": ["containers"],
        "kubernetes": {
            "pod": {"name": "web-7d4b9"},
            "namespace": "shop",
            "container": {"name": "nginx"},
            "node": {"name": "node-1"},
        },
        "container": {"id": CID, "runtime": "docker"},
        "host": {"name": "node-1"},
        "agent": {"type": "logship", "version": __version__},
        "fields": {"env": "prod"},
    }


def test_sidecar_app_event_uses_env_and_read_time() -> None:
    ident = FileIdentity(1, 2, b"abc", "h")
    env = {"POD_NAME": "api-1", "POD_NAMESPACE": "prod", "NODE_NAME": "ip-10-0-0-1", "CONTAINER_NAME": "api"}
    b = EventBuilder(
        path="/app/logs/log-2026-01-01.log",
        identity=ident,
        host_name="api-1",
        tags=["app", "java"],
        fields={},
        input_type="app",
        sidecar=True,
        env=env,
    )
    ev = orjson.loads(b.build(Record(0, 4, 4, "abc", None, None, ()), "2026-09-09T00:00:00.000Z"))
    assert ev["@timestamp"] == "2026-09-09T00:00:00.000Z"
    assert "stream" not in ev and "container" not in ev and "fields" not in ev
    assert ev["kubernetes"] == {
        "pod": {"name": "api-1"},
        "namespace": "prod",
        "container": {"name": "api"},
        "node": {"name": "ip-10-0-0-1"},
    }
    assert ev["tags"] == ["app", "java"]
    assert ev["log"] == {"file": {"path": "/app/logs/log-2026-01-01.log"}, "offset": 0}


def test_timestamp_from_line() -> None:
    ts = TimestampExtractor(r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)", "Asia/Seoul")
    assert ts("2026-01-01 09:00:00,5 INFO x") == "2026-01-01T00:00:00.500Z"
    assert ts("no timestamp here") is None
