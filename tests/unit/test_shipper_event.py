"""Event shape (SPEC §4) and Kubernetes metadata."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import orjson
import pytest

from logship import __version__
from shipper import event as event_module
from shipper.event import EventBuilder, TimestampExtractor, current_agent, kubernetes_from_path, load_agent
from shipper.identity import FileIdentity
from shipper.records import Record

CID = "a" * 64
PATH = f"/var/log/containers/web-7d4b9_shop_nginx-{CID}.log"


def test_kubernetes_from_container_symlink_name() -> None:
    assert kubernetes_from_path(PATH) == ({"pod": "web-7d4b9", "namespace": "shop", "container": "nginx"}, CID)
    pods = "/var/log/pods/shop_web-7d4b9_0f1e2d3c-aaaa-bbbb-cccc-123456789abc/nginx/0.log"
    assert kubernetes_from_path(pods) == ({"pod": "web-7d4b9", "namespace": "shop", "container": "nginx"}, None)
    assert kubernetes_from_path("/app/logs/log-2026-01-01.log") == ({}, None)


def test_container_event_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_module, "_agent", None)  # no process identity loaded: derived from the name
    agent = current_agent("node-1")
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
        "log": {
            "file": {
                "path": PATH,
                "device_id": "1",
                "inode": "2",
                "fingerprint": hashlib.sha256(b"x" * 1024).hexdigest(),
            },
            "offset": 1234,
            "flags": ["truncated"],
        },
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
        "agent": {
            "type": "logship",
            "version": __version__,
            "name": "node-1",
            "id": agent.id,
            "ephemeral_id": agent.ephemeral_id,
        },
        "ecs": {"version": "8.0.0"},
        "input": {"type": "container"},
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
    # the file is shorter than 1024 bytes: no fingerprint yet (Filebeat has none either)
    assert ev["log"] == {"file": {"path": "/app/logs/log-2026-01-01.log", "device_id": "1", "inode": "2"}, "offset": 0}
    assert ev["input"] == {"type": "filestream"} and ev["ecs"] == {"version": "8.0.0"}


def test_timestamp_from_line() -> None:
    ts = TimestampExtractor(r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)", "Asia/Seoul")
    assert ts("2026-01-01 09:00:00,5 INFO x") == "2026-01-01T00:00:00.500Z"
    assert ts("no timestamp here") is None


def test_fingerprint_appears_once_the_file_has_1024_bytes_and_follows_a_truncation() -> None:
    ident = FileIdentity(7, 8, b"a" * 10, "h")
    b = EventBuilder(path="/l.log", identity=ident, host_name="h", tags=[], fields={}, input_type="app", sidecar=False)
    first = orjson.loads(b.build(Record(0, 10, 10, "a", None, None, ()), "2026-01-01T00:00:00.000Z"))
    assert "fingerprint" not in first["log"]["file"]
    ident.extend(10, b"b" * 2000)
    grown = orjson.loads(b.build(Record(10, 20, 20, "b", None, None, ()), "2026-01-01T00:00:00.000Z"))
    assert grown["log"]["file"]["fingerprint"] == hashlib.sha256(b"a" * 10 + b"b" * 1014).hexdigest()
    ident.reset(b"c" * 1024)
    reset = orjson.loads(b.build(Record(0, 20, 20, "c", None, None, ()), "2026-01-01T00:00:00.000Z"))
    assert reset["log"]["file"]["fingerprint"] == hashlib.sha256(b"c" * 1024).hexdigest()


def test_agent_id_is_kept_in_the_registry_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_module, "_agent", None)
    first = load_agent(tmp_path / "reg", "node-a")
    again = load_agent(tmp_path / "reg", "node-a")
    assert first == again and uuid.UUID(first.id) and first.name == "node-a"
    assert orjson.loads((tmp_path / "reg" / "agent.json").read_bytes())["id"] == first.id
    other = load_agent(tmp_path / "other", "node-a")
    assert other.id != first.id and other.ephemeral_id == first.ephemeral_id  # same process, same run
    (tmp_path / "reg" / "agent.json").write_text("{not json")
    repaired = load_agent(tmp_path / "reg", "node-a")
    assert repaired.id != first.id and load_agent(tmp_path / "reg", "node-a").id == repaired.id
    (tmp_path / "ro").write_text("a file, not a directory")
    derived = load_agent(tmp_path / "ro", "node-a")
    assert derived.id == str(uuid.uuid5(uuid.NAMESPACE_DNS, "node-a"))
    monkeypatch.setattr(event_module, "_agent", None)
