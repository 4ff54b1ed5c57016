"""Shipper events kept as bytes (aggregator/splice.py) give exactly the bulk items decoding them gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.accumulator import Ticket
from aggregator.bulk import Encoder
from aggregator.routing import Router
from aggregator.splice import Spliced, decode_window, splice
from logship.lumberjack.server import MALFORMED_FLAG, decode_events
from shipper.event import EventBuilder
from shipper.identity import FileIdentity
from shipper.records import Record

RECEIVED = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
ROUTES = [("containers", "logstash-logs-containers-%{+YYYY.MM.dd}"), ("app", "logstash-logs-app-%{+YYYY.MM.dd}")]
PATH = "/var/log/containers/api-7d9f_prod_api-" + "ab" * 32 + ".log"


def builder(tags: list[str], fields: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> EventBuilder:
    b = EventBuilder(
        path=PATH,
        identity=FileIdentity(1, 2, b"x" * 2000, "node-1"),
        host_name="node-1",
        tags=tags,
        fields=fields or {},
        input_type="containers",
        sidecar=False,
    )
    b.set_runtime("docker")
    if meta:
        b.set_extra({}, meta)
    return b


def encode(events: list[Any], routes: list[tuple[str, str]] = ROUTES) -> list[tuple[bytes, int, str]]:
    items = Encoder(Router(routes, "logstash-logs-%{+YYYY.MM.dd}")).encode(events, RECEIVED, Ticket(len(events)))
    return [(item.data, item.split, item.index) for item in items]


def window(b: EventBuilder, messages: list[str], stamps: list[str], flags: tuple[str, ...] = ()) -> list[bytes]:
    records = [
        Record(100 * i, 100 * i + 50, 100 * i + 50, m, "stdout" if i % 2 else "stderr", stamps[i % len(stamps)], flags)
        for i, m in enumerate(messages)
    ]
    return b.build_all(records, "2026-09-09T00:00:00.000Z")


def test_a_shipper_event_is_kept_as_bytes_and_its_document_is_the_event_without_metadata() -> None:
    [payload] = window(builder(["containers"], {"env": "prod"}), ['he said "hi"\tü \\n'], ["2026-03-04T05:06:07.123Z"])
    spliced = splice(payload)
    assert spliced is not None
    assert spliced.tag == "containers" and spliced.timestamp == "2026-03-04T05:06:07.123Z"
    event = orjson.loads(payload)
    meta = event.pop("@metadata")
    assert spliced.event_id.decode() == meta["_id"]
    assert orjson.loads(payload[: spliced.cut] + b"}") == event


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(st.text(max_size=60), min_size=1, max_size=12),
    stamps=st.lists(
        st.sampled_from(
            [
                "2026-03-04T05:06:07.123Z",
                "2026-03-04T05:06:07.999Z",
                "2026-03-04T23:59:59.000Z",
                "2026-02-30T00:00:00.000Z",  # no such day: the router repairs it, so never spliced
                "2026-03-04T05:06:07.123+09:00",
                "2026-03-04T05:06:07Z",
                "not a time",
            ]
        ),
        min_size=1,
        max_size=4,
    ),
    tags=st.sampled_from([["containers"], ["app"], ["other"], [], ["containers", "app"]]),
    flags=st.sampled_from([(), ("truncated",)]),
    field=st.text(max_size=10),
)
def test_spliced_windows_encode_to_exactly_the_items_of_decoded_windows(
    messages: list[str], stamps: list[str], tags: list[str], flags: tuple[str, ...], field: str
) -> None:
    payloads = window(builder(tags, {"team": field}), messages, stamps, flags)
    spliced, malformed = decode_window(payloads)
    decoded, _ = decode_events(payloads)
    assert malformed == 0
    assert all(type(e) is Spliced for e in spliced) == (len(tags) == 1)
    assert encode(spliced) == encode(decoded)
    # the same with a route that looks at a field: nothing is spliced, and the answers still agree
    spliced, _ = decode_window(payloads)
    field_routes: list[Any] = [("containers", "c-%{+YYYY.MM.dd}")]
    assert encode(spliced, field_routes) == encode(decode_events(payloads)[0], field_routes)


def test_an_event_after_a_cache_hit_is_spliced_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    payloads = window(builder(["containers"]), ["a", "b", "c"], ["2026-03-04T05:06:07.123Z"])
    events, _ = decode_window(payloads)
    encoder = Encoder(Router(ROUTES, "d"))
    encoder.encode(events[:1], RECEIVED, Ticket(1))  # the first one is decoded and fills the cache

    def not_decoded(self: Spliced) -> dict[str, Any]:
        raise AssertionError("decoded although its route was cached")

    monkeypatch.setattr(Spliced, "decode", not_decoded)
    items = encoder.encode(events[1:], RECEIVED, Ticket(2))
    assert [orjson.loads(i.data[i.split :])["message"] for i in items] == ["b", "c"]
    assert all(i.index == "logstash-logs-containers-2026.03.04" for i in items)


def good() -> bytes:
    return window(builder(["containers"]), ["m"], ["2026-03-04T05:06:07.123Z"])[0]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(good().replace(b'"message":"m"', b'"message":"m\xff"'), id="invalid UTF-8"),
        pytest.param(good().replace(b'"message":"m"', b'"message":"m\x01"'), id="raw control character"),
        pytest.param(good().replace(b'"message":"m"', b'"message":'), id="not JSON"),
        pytest.param(good().replace(b'"type":"logship"', b'"type":"filebeat"'), id="another shipper"),
        pytest.param(window(builder(["a", "b"]), ["m"], ["2026-03-04T05:06:07.123Z"])[0], id="two tags"),
        pytest.param(
            window(builder(["containers"], meta={"index_family": "x"}), ["m"], ["2026-03-04T05:06:07.123Z"])[0],
            id="more metadata",
        ),
        pytest.param(b'{"@metadata":{"_id":"abc"}}', id="nothing before the metadata"),
        pytest.param(b'{"agent":{"type":"logship"},"x":{"y":1,"@metadata":{"_id":"ab"}}', id="nested, unbalanced"),
        pytest.param(b'{"agent":{"type":"logship"},"@metadata":{"_id":"a-b"}}', id="id that is not alphanumeric"),
        pytest.param(b'{"agent":{"type":"logship"},"tags":"x","@metadata":{"_id":"ab"}}', id="tags not a list"),
        pytest.param(b'["agent",{"type":"logship"},"@metadata",{"_id":"ab"}]', id="an array"),
        pytest.param(b'{"x":1,"@metadata":{"_id":"ab"}}', id="no agent"),
        pytest.param(b'{"agent":{"name":"n"},"@metadata":{"_id":"ab"}}', id="agent without a type"),
        pytest.param(b'{"agent":{"type":null},"@metadata":{"_id":"ab"}}', id="agent type null"),
        pytest.param(b'{"agent":{"type":"logship"},"tags":[],"@metadata":{"_id":"ab"}}', id="empty tags"),
        pytest.param(b'{"agent":{"type":"logship"},"tags":[1],"@metadata":{"_id":"ab"}}', id="a tag not a string"),
    ],
)
def test_what_cannot_be_proven_safe_is_decoded_as_before(payload: bytes) -> None:
    assert splice(payload) is None
    assert decode_window([payload]) == decode_events([payload])


@pytest.mark.parametrize("tags", [b"", b',"tags":null'])
def test_an_event_without_tags_is_spliced_with_no_tag(tags: bytes) -> None:
    payload = (
        b'{"@timestamp":"2026-03-04T05:06:07.123Z","agent":{"type":"logship"}' + tags + b',"@metadata":{"_id":"a1"}}'
    )
    spliced = splice(payload)
    assert spliced is not None
    assert (spliced.tag, spliced.timestamp, spliced.event_id, payload[: spliced.cut]) == (
        None,
        "2026-03-04T05:06:07.123Z",
        b"a1",
        payload[: payload.index(b',"@metadata"')],
    )


def test_malformed_payloads_are_flagged_text_among_spliced_events() -> None:
    ok = good()
    events, malformed = decode_window([ok, b"not json", ok])
    assert malformed == 1
    assert type(events[0]) is Spliced and type(events[2]) is Spliced
    assert events[1] == {"message": "not json", "log": {"flags": [MALFORMED_FLAG]}}
