"""Files -> `logship shipper` -> `logship aggregator` -> OpenSearch, as real processes.

Every test writes logs with the generator while the pipeline runs, waits until OpenSearch holds as
many documents as events were written, stops the pipeline gracefully, then proves each event is
there exactly once, in the right daily index, with the right fields and the exact message.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from logship.demo.verify import compare
from logship.loggen import MARKER_RE, GenConfig, Generator
from logship.loggen.readback import read_tree
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e
WAIT_S = float(os.environ.get("LOGSHIP_E2E_WAIT", "45"))  # for every event to be searchable


def _key(doc: dict[str, Any]) -> tuple[str, int]:
    m = MARKER_RE.search(doc["message"])
    assert m is not None, doc["message"][:200]
    return m.group(2), int(m.group(3))


def _ms(runtime_time: str) -> str:
    """`2026-01-31T23:59:59.123456789Z` -> `2026-01-31T23:59:59.123Z` (@timestamp keeps milliseconds)."""
    return runtime_time[:23] + "Z"


def ship_and_check(pipeline: Pipeline, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Wait for every event, stop the pipeline, compare with the manifest and the files on disk."""
    arrived = pipeline.wait_indexed(manifest["events"], timeout=WAIT_S)
    time.sleep(1.0)  # a late duplicate would land now
    diagnostics = "" if arrived else pipeline.diagnostics()
    codes = pipeline.stop()
    docs = pipeline.documents()
    report = compare(manifest, docs, pipeline.prefix)
    assert report.ok, f"{report.summary()}\n{diagnostics}"
    assert codes == {"shipper": 0, "aggregator": 0}
    assert len(docs) == manifest["events"]
    tree = read_tree(manifest)
    assert len(tree.events) == manifest["events"]
    for doc in docs:
        event = tree.events[_key(doc)]
        assert doc["message"] == event.message
        assert doc["host"]["name"] == "e2e-node"
        assert doc["agent"]["type"] == "logship"
        if event.stream is not None:
            assert doc["stream"] == event.stream
            assert doc["@timestamp"] == _ms(event.time or "")
            assert doc["kubernetes"]["node"]["name"] == "e2e-node"
        else:
            assert doc["@timestamp"] == event.message[:10] + "T" + event.message[11:23] + "Z"
    return docs


def test_both_container_formats_long_lines_and_stack_traces(pipeline: Pipeline) -> None:
    pipeline.start()
    manifest = Generator(
        GenConfig(
            root=pipeline.root, rate=1500, duration=4, pods=4, format="mixed", long_ratio=0.02,
            long_bytes=40_000, stack_ratio=0.3, app_share=0.25, seed=11,
        )
    ).run()  # fmt: skip
    docs = ship_and_check(pipeline, manifest)

    by_source = {s["id"]: s for s in manifest["sources"]}
    formats_seen = {by_source[_key(d)[0]].get("format") for d in docs}
    assert formats_seen == {"docker", "cri", None}  # None: the app log
    long_docs = [d for d in docs if len(d["message"]) == 40_000]
    assert {d["container"]["runtime"] for d in long_docs} == {"docker", "cri"}  # 16 KiB splits and CRI partials
    assert len(long_docs) == sum(s.get("split_events", 0) for s in manifest["sources"])
    traces = [d for d in docs if "app" in d["tags"] and "\n\tat " in d["message"]]
    assert len(traces) == by_source["app"]["multiline_events"] > 0
    assert {d["stream"] for d in docs if "containers" in d["tags"]} == {"stdout", "stderr"}
    offsets = {(d["log"]["file"]["path"], d["log"]["offset"]) for d in docs}
    assert len(offsets) == len(docs)  # without rotation, (file, offset) is unique
    contents = {path: Path(path).read_bytes() for path, _ in offsets}
    for d in docs:  # log.offset is where the event's first line starts in its file
        data, offset = contents[d["log"]["file"]["path"]], d["log"]["offset"]
        assert offset == 0 or data[offset - 1 : offset] == b"\n"
        first_line = data[offset : data.index(b"\n", offset)]
        marker = MARKER_RE.search(d["message"])
        assert marker is not None and marker.group(0).encode() in first_line


@pytest.mark.parametrize(
    ("style", "quiet"),
    [
        ("rename", 0.0),
        ("kubelet", 0.0),
        # copytruncate loses whatever is written between the copy and the truncation unless the tailer
        # has read it (a known limit of that method): the generator pauses before each rotation.
        ("copytruncate", 1.0),
    ],
)
def test_rotation_while_shipping(pipeline: Pipeline, style: str, quiet: float) -> None:
    # the containers' files exist (empty) before the shipper starts, as on a node: a file created and
    # rotated away within one scan interval, before any tailer saw it, is beyond any tailer's reach
    gen = Generator(
        GenConfig(
            root=pipeline.root, rate=500, duration=6, pods=2, format="mixed", app_share=0.1, rotate=style,
            rotate_bytes=(96 if quiet else 48) * 1024, rotate_keep=50, rotate_quiet=quiet, seed=21, long_ratio=0.005,
        )
    )  # fmt: skip
    pipeline.start()
    manifest = gen.run()
    containers = [s for s in manifest["sources"] if s["kind"] == "container"]
    assert all(s["rotations"] >= 2 for s in containers), [s["rotations"] for s in containers]
    ship_and_check(pipeline, manifest)


def test_app_logs_over_a_date_rollover_go_to_two_daily_indices(pipeline: Pipeline) -> None:
    """A fake clock 3 s before midnight: the app switches to the next day's file while the shipper runs,
    and an earlier day's file exists before the shipper starts."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    gen = Generator(
        GenConfig(
            root=pipeline.root, rate=400, duration=6, pods=2, app_share=0.5, app_days=2, app_backlog=30,
            stack_ratio=0.2, start_time=midnight - timedelta(seconds=3), seed=31,
        )
    )  # fmt: skip
    pipeline.start_aggregator()
    result: dict[str, Any] = {}
    writer = threading.Thread(target=lambda: result.update(manifest=gen.run()))
    writer.start()
    time.sleep(1.0)  # the backlog day and the first lines exist before the shipper starts
    pipeline.start_shipper()
    writer.join(30)
    manifest = result["manifest"]
    ship_and_check(pipeline, manifest)

    day = [(midnight + timedelta(days=d)).strftime("%Y.%m.%d") for d in (-2, -1, 0)]
    app = next(s for s in manifest["sources"] if s["kind"] == "app")
    assert set(app["files"]) == {f"log-{d.replace('.', '-')}.log" for d in day}
    counts = pipeline.counts()
    p = pipeline.prefix
    assert counts == {
        **{f"{p}logstash-logs-app-{d}": n for d, n in app["dates"].items()},
        **{f"{p}logstash-logs-containers-{d}": n for d, n in manifest["families"]["containers"]["dates"].items()},
    }
    assert set(app["dates"]) == set(day) and app["dates"][day[0]] == 30
    assert set(manifest["families"]["containers"]["dates"]) == set(day[1:])
