"""The encoder's cached fast path gives exactly what the general path (router + orjson per event) gives."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.accumulator import Ticket
from aggregator.bulk import Encoder, _dumps
from aggregator.routing import Router

RECEIVED = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
ROUTES = [
    ("app", "a-%{+YYYY.MM.dd}"),
    ("hourly", "h-%{+YYYY.MM.dd.HH}"),
    ("const", "constant"),
    ("secs", "s-%{+HH.mm.ss}"),
    ("app", "never-%{+YYYY}"),  # a later route of the same tag never wins
]
DEFAULT = "d-%{+xxxx.ww}"


def reference(events: list[Any]) -> list[tuple[bytes, int, str]]:
    """The general path, spelled out: the router for every event, orjson for the action and the document."""
    router = Router(ROUTES, DEFAULT)
    out = []
    for event in events:
        meta = event.pop("@metadata", None)
        event_id = meta["_id"]
        index = router.index_for(event, RECEIVED)
        action = b'{"create":{"_index":' + orjson.dumps(index) + b',"_id":' + orjson.dumps(event_id) + b"}}\n"
        out.append((action + _dumps(event) + b"\n", len(action), index))
    return out


# Second-prefixes and tails chosen so that events often share `@timestamp[:19]` with different tails, and
# so that the odd shapes (impossible dates, hour 24, other scripts' digits, offsets) meet the cache.
PREFIXES = (
    st.sampled_from(["2026-01-01T00:30:00", "2025-12-31T23:59:59"])
    | st.sampled_from(
        [
            "2026-01-01T00:00:00",
            "2025-12-31T23:59:59",
            "2026-02-28T12:00:00",
            "2026-02-30T12:00:00",
            "2024-02-29T00:00:00",
            "2026-01-01T24:00:00",
            "2026-13-01T00:00:00",
            "2026-01-01T00:60:00",
            "\uff12026-01-01T00:00:00",
            "2026-01-01 00:00:00",
            "0000-01-01T00:00:00",
        ]
    )
    | st.text(min_size=0, max_size=22)
)
TAILS = (
    st.sampled_from([".000Z", ".123Z"])
    | st.sampled_from(
        [".000Z", ".123Z", ".999Z", "Z", ".5Z", ".123456Z", "+02:00", ".000+01:00", ".\uff11\uff12\uff13Z", ".12Z", ""]
    )
    | st.text(max_size=6)
)
TAGS = st.sampled_from([["hourly"], ["secs"]]) | st.sampled_from(
    [["app"], ["hourly"], ["const"], ["secs"], ["nomatch"], ["app", "hourly"], "app", None, [1], [["app"]], []]
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {"@metadata": {"_id": draw(st.text(min_size=1, max_size=20))}, "message": "m"}
    tags = draw(TAGS)
    if tags is not None:
        event["tags"] = copy.deepcopy(tags)
    ts = draw(st.one_of(st.builds(lambda p, t: p + t, PREFIXES, TAILS), st.none(), st.integers()))
    if ts is not None:
        event["@timestamp"] = ts
    return event


@settings(max_examples=400)
@given(windows=st.lists(st.lists(events(), min_size=1, max_size=30), min_size=1, max_size=4))
def test_fast_path_matches_general_path(windows: list[list[dict[str, Any]]]) -> None:
    encoder = Encoder(Router(ROUTES, DEFAULT))  # one encoder across windows: its cache carries over
    for window in windows:
        expected = reference(copy.deepcopy(window))
        mine = copy.deepcopy(window)
        items = encoder.encode(mine, RECEIVED, Ticket(len(mine)))
        assert [(i.data, i.split, i.index) for i in items] == expected
        ref_events = copy.deepcopy(window)
        reference(ref_events)
        assert mine == ref_events  # the same repairs (timestamp, tags, logship.invalid_timestamp) in place


def test_cache_hits_after_first_event_and_odd_timestamps_never_cached() -> None:
    encoder = Encoder(Router(ROUTES, DEFAULT))
    window = [
        {"@metadata": {"_id": str(i)}, "tags": ["app"], "@timestamp": f"2026-01-01T00:00:00.{i:03d}Z"} for i in range(3)
    ] + [{"@metadata": {"_id": "x"}, "tags": ["app"], "@timestamp": "2026-02-30T00:00:00.000Z"}]
    items = encoder.encode(window, RECEIVED, Ticket(4))
    assert [i.index for i in items] == ["a-2026.01.01"] * 3 + ["a-2026.03.04"]
    assert encoder._fast == {"app": {"2026-01-01T00:00:00": (encoder._prefix("a-2026.01.01"), "a-2026.01.01")}}
    assert window[3]["logship"] == {"invalid_timestamp": "2026-02-30T00:00:00.000Z"}


def test_fast_cache_is_bounded() -> None:
    encoder = Encoder(Router(ROUTES, DEFAULT))
    for second in range(0, 10_050):
        ts = f"2026-01-01T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000Z"
        encoder.encode([{"@metadata": {"_id": "i"}, "tags": ["secs"], "@timestamp": ts}], RECEIVED, Ticket(1))
    assert 0 < encoder._fast_size <= 10_000
    assert sum(len(v) for v in encoder._fast.values()) == encoder._fast_size


def test_same_second_with_other_tails_takes_the_general_path() -> None:
    encoder = Encoder(Router(ROUTES, DEFAULT))
    tails = [".000Z", "+02:00", ".000+02:00", ".\uff11\uff12\uff13Z", ".123Z", "Z", ".1234Z"]
    window = [{"@metadata": {"_id": t}, "tags": ["hourly"], "@timestamp": "2026-01-01T00:30:00" + t} for t in tails]
    expected = reference(copy.deepcopy(window))
    items = encoder.encode(window, RECEIVED, Ticket(len(window)))
    assert [(i.data, i.split, i.index) for i in items] == expected
    assert [i.index for i in items][:3] == ["h-2026.01.01.00", "h-2025.12.31.22", "h-2025.12.31.22"]


def test_untagged_events_are_cached_under_the_default_route_only() -> None:
    encoder = Encoder(Router(ROUTES, DEFAULT))
    ts = "2026-01-01T00:30:00.000Z"
    window: list[dict[str, Any]] = [
        {"@metadata": {"_id": "1"}, "@timestamp": ts},
        {"@metadata": {"_id": "2"}, "@timestamp": ts, "tags": "app"},
        {"@metadata": {"_id": "3"}, "@timestamp": ts, "tags": None},
        {"@metadata": {"_id": "4"}, "@timestamp": ts, "tags": ["app", "hourly"]},
    ]
    expected = reference(copy.deepcopy(window))
    items = encoder.encode(window, RECEIVED, Ticket(len(window)))
    assert [(i.data, i.split, i.index) for i in items] == expected
    assert [i.index for i in items] == ["d-2026.01", "a-2026.01.01", "d-2026.01", "a-2026.01.01"]
    assert set(encoder._fast) == {None}
