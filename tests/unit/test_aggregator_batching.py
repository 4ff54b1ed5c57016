"""Batching bookkeeping, bulk encoding and per-item response handling (pure logic)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.accumulator import Accumulator, BulkItem, Ticket, settle_items
from aggregator.bulk import Encoder, body_of, derived_id
from aggregator.retry import sort_items as classify
from aggregator.routing import Router

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def item(ticket: Ticket, size: int = 10) -> BulkItem:
    return BulkItem.of(b"a" * (size // 2) + b"\n", b"s" * (size - size // 2 - 1) + b"\n", "idx", ticket)


@settings(max_examples=200)
@given(
    windows=st.lists(st.lists(st.integers(min_value=2, max_value=300), min_size=1, max_size=30), max_size=20),
    max_bytes=st.integers(min_value=1, max_value=2000),
    max_docs=st.integers(min_value=1, max_value=50),
    data=st.data(),
)
def test_batches_respect_limits_and_every_window_settles_exactly_once(
    windows: list[list[int]], max_bytes: int, max_docs: int, data: st.DataObject
) -> None:
    acc = Accumulator(max_bytes, max_docs)
    completed: list[int] = []
    batches: list[list[BulkItem]] = []
    all_items: list[BulkItem] = []
    for w, sizes in enumerate(windows):
        ticket = Ticket(len(sizes), lambda w=w: completed.append(w))
        items = [item(ticket, s) for s in sizes]
        all_items.extend(items)
        batches.extend(acc.add_many(items, now=float(w)))
    batches.append(acc.take())
    assert len(acc) == 0 and acc.nbytes == 0 and acc.oldest is None
    # every item exactly once, in order
    flat = [i for b in batches for i in b]
    assert flat == all_items
    for b in batches:
        assert len(b) <= max_docs
        if len(b) > 1:
            assert sum(i.nbytes for i in b[:-1]) < max_bytes  # only the last item may overflow
    # settle batches in a random order; each window completes once, when its last item settles
    order = data.draw(st.permutations(range(len(batches))))
    for n in order:
        settle_items(batches[n])
    assert sorted(completed) == list(range(len(windows)))


def test_ticket_rejects_oversettling_and_reports_completion_once() -> None:
    calls: list[int] = []
    t = Ticket(3, lambda: calls.append(1))
    assert t.settle(2) is False
    assert t.settle(1) is True
    assert calls == [1] and t.done
    with pytest.raises(ValueError):
        t.settle(1)


def test_accumulator_age_and_oversized_item() -> None:
    acc = Accumulator(max_bytes=100, max_docs=10)
    t = Ticket(3)
    assert acc.add(item(t, 30), now=5.0) is None
    assert acc.age(7.5) == 2.5
    full = acc.add(item(t, 500), now=8.0)  # does not fit: the open batch closes first
    assert full is not None and len(full) == 1
    assert len(acc) == 1 and acc.oldest == 8.0


def encoder() -> Encoder:
    return Encoder(Router([("app", "app-%{+YYYY.MM.dd}")], "other-%{+YYYY.MM.dd}"))


def test_encode_strips_metadata_and_uses_its_id() -> None:
    t = Ticket(2)
    events: list[Any] = [
        {"@timestamp": "2026-01-02T03:04:05.000Z", "tags": ["app"], "@metadata": {"_id": 'a"b'}, "n": 2**70},
        "just a string",
    ]
    items = encoder().encode(events, NOW, t)
    body = body_of(items).decode()
    lines = body.splitlines()
    assert len(lines) == 4 and body.endswith("\n")
    assert orjson.loads(lines[0]) == {"create": {"_index": "app-2026.01.02", "_id": 'a"b'}}
    doc = json.loads(lines[1])  # 2**70 is beyond orjson: the stdlib encoder took over
    assert "@metadata" not in doc and doc["n"] == 2**70
    action2 = orjson.loads(lines[2])["create"]
    assert action2["_index"] == "other-2026.01.01"
    assert len(action2["_id"]) == 32  # random id: nothing stable to derive it from
    assert orjson.loads(lines[3])["message"] == "just a string"


def test_derived_id_is_stable_and_distinguishes_files_and_offsets() -> None:
    def ev(path: str, offset: int, inode: int | None = None) -> dict[str, Any]:
        f: dict[str, Any] = {"path": path}
        if inode is not None:
            f["inode"] = inode
        return {"host": {"name": "n1"}, "log": {"file": f, "offset": offset}, "@timestamp": "t"}

    assert derived_id(ev("/a", 1)) == derived_id(ev("/a", 1))
    assert (
        len(
            {
                derived_id(ev("/a", 1)),
                derived_id(ev("/a", 2)),
                derived_id(ev("/b", 1)),
                derived_id(ev("/a", 1, inode=7)),
            }
        )
        == 4
    )
    assert derived_id({"message": "x"}) != derived_id({"message": "x"})  # random without an offset


@settings(max_examples=200)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=(1 << 48) - 1), min_size=2, max_size=20, unique=True),
    paths=st.lists(st.text(min_size=1, max_size=20), min_size=2, max_size=2, unique=True),
    stamp=st.text(max_size=30),
)
def test_derived_ids_share_a_prefix_per_file_and_sort_by_offset(
    offsets: list[int], paths: list[str], stamp: str
) -> None:
    def ev(path: str, offset: int, ts: str = stamp) -> dict[str, Any]:
        return {"agent": {"id": "a1"}, "log": {"file": {"path": path, "inode": 9}, "offset": offset}, "@timestamp": ts}

    ids = [derived_id(ev(paths[0], o)) for o in offsets]
    assert len({i[:20] for i in ids}) == 1  # one file, one prefix
    assert sorted(ids) == [derived_id(ev(paths[0], o)) for o in sorted(offsets)]  # ids sort like offsets
    assert all(len(i) == 40 and i.isalnum() for i in ids)
    other = derived_id(ev(paths[1], offsets[0]))
    assert other[:20] != ids[0][:20]  # another file, another prefix
    assert derived_id(ev(paths[0], offsets[0], stamp + "x")) != ids[0]  # the same offset read at another time
    # an offset that is not an integer is still a stable id, of letters and digits
    odd = ev(paths[0], offsets[0])
    odd["log"]["offset"] = str(offsets[0]) + ".5"
    assert derived_id(odd) == derived_id(odd) and derived_id(odd).isalnum()
    # nor does a file field that is an object, or a timestamp with a lone surrogate, break it
    odd = ev(paths[0], offsets[0], "\ud800")
    odd["log"]["file"]["inode"] = {"n": [1]}
    assert derived_id(odd) == derived_id(odd) and derived_id(odd).isalnum()


def test_classify_item_results() -> None:
    t = Ticket(6)
    items = [item(t) for _ in range(6)]
    response = {
        "errors": True,
        "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
            {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}},
            {"create": {"status": 503, "error": {"type": "unavailable_shards_exception"}}},
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}},
            {"create": {"status": 404, "error": {"type": "index_not_found_exception"}}},
        ],
    }
    out = classify(items, response)
    assert out.delivered == items[:2] and out.conflicts == 1
    assert out.retry == items[2:4] and out.retry_statuses == {429: 1, 503: 1}
    assert [(i, s) for i, s, _ in out.dead] == [(items[4], 400), (items[5], 404)]
    assert out.dead[0][2]["type"] == "mapper_parsing_exception"


def test_classify_all_ok_and_malformed_responses() -> None:
    t = Ticket(2)
    items = [item(t), item(t)]
    assert classify(items, {"errors": False}).delivered == items
    assert classify(items, {"errors": True, "items": [{"create": {"status": 201}}]}).retry == items
    assert classify(items, None).retry == items
