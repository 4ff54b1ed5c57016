"""`logship.demo.verify.compare`: the check behind the demo's summary and the end-to-end tests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from logship.demo.verify import compare
from logship.loggen import GenConfig, Generator
from logship.loggen.readback import read_tree


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("node")
    cfg = GenConfig(root=root, rate=0, lines=300, pods=2, start_time=datetime(2026, 5, 1, 8, tzinfo=UTC))
    return Generator(cfg).run()


def as_documents(manifest: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """What a correct pipeline would index for this manifest."""
    sources = {s["id"]: s for s in manifest["sources"]}
    docs = []
    for (sid, _), ev in read_tree(manifest).events.items():
        src = sources[sid]
        if src["kind"] == "container":
            ts = ev.time[:23] + "Z" if ev.time else ""
            extra = {
                "stream": ev.stream,
                "kubernetes": {
                    "pod": {"name": src["kubernetes"]["pod"]["name"]},
                    "namespace": src["kubernetes"]["namespace"],
                    "container": {"name": src["kubernetes"]["container"]["name"]},
                },
                "container": dict(src["container"]),
            }
            path = src["path"]
        else:
            ts = ev.message[:10] + "T" + ev.message[11:23] + "Z"
            extra = {}
            path = ev.file
        docs.append(
            {
                "_index": f"{prefix}logstash-logs-{src['family']}-{ts[:10].replace('-', '.')}",
                "@timestamp": ts,
                "message": ev.message,
                "tags": [src["family"]],
                "log": {"file": {"path": path}, "offset": 0},
                **extra,
            }
        )
    return docs


def test_a_correct_set_of_documents_passes(manifest: dict[str, Any]) -> None:
    report = compare(manifest, as_documents(manifest, "t-1-"), "t-1-")
    assert report.ok, report.summary()
    assert report.found == report.expected == manifest["events"]
    assert "exactly once" in report.summary()


def test_missing_duplicate_and_foreign_documents_are_reported(manifest: dict[str, Any]) -> None:
    docs = as_documents(manifest)
    dropped = [d for d in docs if "src=p0c0 seq=3 " in d["message"] or "src=p0c0 seq=4 " in d["message"]]
    assert len(dropped) == 2
    docs = [d for d in docs if d not in dropped]
    docs.append(copy.deepcopy(docs[0]))
    docs.append({**docs[1], "message": "run=ffffffff src=p0c0 seq=1 from another run"})
    report = compare(manifest, docs)
    assert not report.ok
    assert report.missing == [("p0c0", 3), ("p0c0", 4)]
    assert sum(report.duplicates.values()) == 1
    assert report.unexpected == 1
    assert "p0c0 3-4" in report.summary()


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("_index", "logstash-logs-app-2026.05.01", "expected index"),
        ("kubernetes.namespace", "elsewhere", "kubernetes.namespace"),
        ("container.runtime", "podman", "container.runtime"),
        ("tags", ["app"], "tags"),
        ("log.offset", None, "log.offset"),
        ("log.file.path", "/somewhere/else.log", "log.file.path"),
        ("stream", None, "stream"),
    ],
)
def test_wrong_fields_are_reported(manifest: dict[str, Any], field: str, value: Any, complaint: str) -> None:
    docs = as_documents(manifest)
    doc = next(d for d in docs if "containers" in d["tags"])
    *parents, leaf = field.split(".")
    target = doc
    for p in parents:
        target = target[p]
    target[leaf] = value
    report = compare(manifest, docs)
    assert report.problem_count == 1, report.summary()
    assert complaint in report.problems[0]


def test_app_event_in_the_wrong_day_is_reported(manifest: dict[str, Any]) -> None:
    docs = as_documents(manifest)
    doc = next(d for d in docs if "app" in d["tags"])
    doc["@timestamp"] = "2026-05-02T00:00:01.000Z"
    doc["_index"] = "logstash-logs-app-2026.05.02"
    report = compare(manifest, docs)
    assert report.problem_count == 1 and "has @timestamp" in report.problems[0]
    assert Path(doc["log"]["file"]["path"]).name == "log-2026-05-01.log"
