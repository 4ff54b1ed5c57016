"""Routing and Logstash date formatting (pure logic)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.bulk import Encoder
from aggregator.config import AggregatorConfig
from aggregator.routing import TIMESTAMP_FAILURE_TAG, PatternError, Router, RouteSpec, compile_pattern, iso_utc, utc_key

RECEIVED = datetime(2030, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def router() -> Router:
    return Router(
        [("containers", "logstash-logs-containers-%{+YYYY.MM.dd}"), ("app", "logstash-logs-app-%{+YYYY.MM.dd}")],
        "logstash-logs-unrouted-%{+YYYY.MM.dd}",
    )


@pytest.mark.parametrize(
    ("ts", "index"),
    [
        ("2025-12-31T23:59:59.999Z", "logstash-logs-app-2025.12.31"),
        ("2026-01-01T00:00:00.000Z", "logstash-logs-app-2026.01.01"),
        ("2026-01-01T00:30:00+02:00", "logstash-logs-app-2025.12.31"),
        ("2025-12-31T22:30:00-02:00", "logstash-logs-app-2026.01.01"),
        ("2026-01-01T00:30:00.123456789+02:00", "logstash-logs-app-2025.12.31"),
        ("2026-01-01T00:30:00.123+0200", "logstash-logs-app-2025.12.31"),
        ("2026-02-28T12:00:00", "logstash-logs-app-2026.02.28"),  # no offset: UTC
        ("2024-02-29T23:59:59.999999Z", "logstash-logs-app-2024.02.29"),
    ],
)
def test_utc_date_of_timestamp(ts: str, index: str) -> None:
    event = {"tags": ["app"], "@timestamp": ts}
    assert router().index_for(event, RECEIVED) == index
    assert event["@timestamp"] == ts  # a good timestamp is left as it was
    assert event["tags"] == ["app"]


def test_first_route_in_config_order_wins_and_default_catches_the_rest() -> None:
    r = router()
    ts = "2026-01-01T00:00:00Z"
    assert r.index_for({"tags": ["app", "containers"], "@timestamp": ts}, RECEIVED).startswith(
        "logstash-logs-containers"
    )
    assert r.index_for({"tags": "app", "@timestamp": ts}, RECEIVED).startswith("logstash-logs-app")
    for tags in (["x"], [], None, 5, [{"a": 1}]):
        event = {"tags": tags, "@timestamp": ts}
        assert r.index_for(event, RECEIVED) == "logstash-logs-unrouted-2026.01.01"


@pytest.mark.parametrize(
    "bad", [None, "", "yesterday", "2026-13-01T00:00:00Z", 1700000000, {"a": 1}, "2026-99-99T99:99:99Z"]
)
def test_bad_or_missing_timestamp_uses_receive_time_and_is_flagged(bad: object) -> None:
    event: dict[str, object] = {"tags": ["app"], "message": "m"}
    if bad is not None:
        event["@timestamp"] = bad
    assert router().index_for(event, RECEIVED) == "logstash-logs-app-2030.05.06"
    assert event["@timestamp"] == "2030-05-06T07:08:09.123Z"
    assert event["tags"] == ["app", TIMESTAMP_FAILURE_TAG]
    if bad is not None:
        assert event["logship"] == {"invalid_timestamp": str(bad)}
    else:
        assert "logship" not in event


def test_joda_tokens() -> None:
    dt = datetime(2021, 1, 3, 5, 6, 7, tzinfo=UTC)  # ISO week 53 of weekyear 2020
    assert compile_pattern("i-%{+yyyy.MM.dd.HH}").format(dt) == "i-2021.01.03.05"
    assert compile_pattern("i-%{+xxxx.ww}").format(dt) == "i-2020.53"
    assert compile_pattern("i-%{+YY-M-d-H}").format(dt) == "i-21-1-3-5"
    assert compile_pattern("i-%{+yyyy'w'ww}").format(dt) == "i-2021w53"
    assert compile_pattern("static-name").format(dt) == "static-name"
    assert compile_pattern("logs-%{+YYYY.MM.dd}").static_prefix == "logs-"


@pytest.mark.parametrize("bad", ["logs-%{+YYYY.QQ}", "Logs-%{+YYYY}", "logs-%{host}", "logs x", "", "a-%{+'x}"])
def test_unusable_patterns_are_config_errors(bad: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(bad)


def test_hourly_pattern_uses_hour_of_utc_time() -> None:
    r = Router([("app", "h-%{+YYYY.MM.dd.HH}")], "d-%{+YYYY}")
    assert r.index_for({"tags": ["app"], "@timestamp": "2026-01-01T00:30:00+02:00"}, RECEIVED) == "h-2025.12.31.22"
    assert r.index_for({"tags": ["app"], "@timestamp": "2026-01-01T01:30:00Z"}, RECEIVED) == "h-2026.01.01.01"
    assert r.index_for({"@timestamp": "2026-01-01T01:30:00Z"}, RECEIVED) == "d-2026"


aware = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 30), timezones=st.just(UTC))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(aware, offsets)
def test_any_offset_routes_to_the_utc_day(moment: datetime, tz: timezone) -> None:
    local = moment.astimezone(tz)
    event = {"tags": ["containers"], "@timestamp": local.isoformat()}
    expected = f"logstash-logs-containers-{moment.year:04d}.{moment.month:02d}.{moment.day:02d}"
    assert router().index_for(event, RECEIVED) == expected
    assert utc_key(local.isoformat()) == moment.strftime("%Y-%m-%dT%H:%M:%S")


@given(aware)
def test_shipper_timestamps_take_the_fast_path_correctly(moment: datetime) -> None:
    ts = iso_utc(moment)
    assert ts.endswith("Z") and len(ts) == 24
    assert utc_key(ts) == moment.strftime("%Y-%m-%dT%H:%M:%S")
    fmt = compile_pattern("x-%{+xxxx.ww.yyyy.MM.dd.HH.mm.ss}")
    iso = moment.isocalendar()
    assert fmt.format(moment) == (f"x-{iso[0]:04d}.{iso[1]:02d}." + moment.strftime("%Y.%m.%d.%H.%M.%S"))


@given(st.text(max_size=40))
def test_any_string_timestamp_routes_somewhere(ts: str) -> None:
    event = {"tags": ["app"], "@timestamp": ts}
    index = router().index_for(event, RECEIVED)
    assert index.startswith("logstash-logs-app-")
    if TIMESTAMP_FAILURE_TAG in event["tags"]:
        assert index == "logstash-logs-app-2030.05.06"


# --- routes by field ------------------------------------------------------------------------------

T = "2026-03-01T10:00:00.000Z"
WHEN = datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC)


def default_router() -> Router:
    cfg = AggregatorConfig()
    return Router([r.spec() for r in cfg.routes], cfg.default_index)


def filebeat_event(input_type: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "@timestamp": T,
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "9.3.0"},
        "message": "m",
        "input": {"type": input_type},
        "log": {"file": {"path": path}, "offset": 0},
        **extra,
    }


@pytest.mark.parametrize(
    ("event", "index"),
    [
        (filebeat_event("container", "/var/log/containers/a_b_c-1.log"), "logstash-logs-containers-2026.03.01"),
        (filebeat_event("filestream", "/var/log/containers/a_b_c-1.log"), "logstash-logs-containers-2026.03.01"),
        (filebeat_event("filestream", "/var/log/pods/ns_p_u/c/0.log"), "logstash-logs-containers-2026.03.01"),
        (filebeat_event("log", "/var/log/containers/x.log"), "logstash-logs-containers-2026.03.01"),
        (filebeat_event("filestream", "/var/log/syslog"), "logstash-logs-unrouted-2026.03.01"),
        (filebeat_event("container", "/x", tags=["app"]), "logstash-logs-app-2026.03.01"),  # tag route first
        ({"@timestamp": T, "tags": ["containers"], "message": "m"}, "logstash-logs-containers-2026.03.01"),
        ({"@timestamp": T, "tags": ["app"], "message": "m"}, "logstash-logs-app-2026.03.01"),
        ({"@timestamp": T, "message": "m", "input": "container"}, "logstash-logs-unrouted-2026.03.01"),
    ],
)
def test_default_routes_take_a_stock_filebeat(event: dict[str, Any], index: str) -> None:
    """Through the encoder, as in the aggregator: @metadata is taken off the document but routes."""
    encoder = Encoder(default_router())
    item = encoder.encode([dict(event)], WHEN, ticket=None)[0]  # type: ignore[arg-type]
    assert item.index == index
    assert b"@metadata" not in item.data


def test_routes_in_order_with_globs_and_metadata() -> None:
    router = Router(
        [
            RouteSpec("pay-%{+YYYY}", match=(("kubernetes.namespace", ("payments-*",)),)),
            RouteSpec("fb-%{+YYYY}", tag="x", match=(("@metadata.beat", ("filebeat",)),)),
            RouteSpec("num-%{+YYYY}", match=(("log.offset", ("4?",)),)),
            RouteSpec("x-%{+YYYY}", tag="x"),
        ],
        "d-%{+YYYY}",
    )
    kube = {"kubernetes": {"namespace": "payments-eu"}, "tags": ["x"]}
    assert router.index_for({"@timestamp": T, **kube}, WHEN) == "pay-2026"
    meta = {"beat": "filebeat"}
    assert router.index_for({"@timestamp": T, "tags": ["x"]}, WHEN, meta) == "fb-2026"
    assert router.index_for({"@timestamp": T, "tags": ["x"], "@metadata": meta}, WHEN) == "fb-2026"
    assert router.index_for({"@timestamp": T, "tags": ["x"]}, WHEN, {"beat": "other"}) == "x-2026"
    assert router.index_for({"@timestamp": T, "log": {"offset": 42}}, WHEN) == "num-2026"
    assert router.index_for({"@timestamp": T, "log": {"offset": True}}, WHEN) == "d-2026"
    assert router.index_for({"@timestamp": T, "kubernetes": {"namespace": ["payments-eu"]}}, WHEN) == "d-2026"
    assert router.index_for({"@timestamp": T, "kubernetes.namespace": "payments-1"}, WHEN) == "pay-2026"
    assert not router.tag_decides("x") and not router.tag_decides(None)


def test_encoder_fast_path_never_mixes_field_routed_events() -> None:
    """Untagged events of the same second go to different indices by field: the tag cache must not apply."""
    encoder = Encoder(default_router())
    events = [
        {"@timestamp": T, "message": "a", "input": {"type": "container"}, "log": {"file": {"path": "/a"}}},
        {"@timestamp": T, "message": "b", "input": {"type": "filestream"}, "log": {"file": {"path": "/a"}}},
        {"@timestamp": T, "message": "c", "input": {"type": "container"}, "log": {"file": {"path": "/b"}}},
    ]
    for _ in range(2):
        items = encoder.encode([dict(e) for e in events], WHEN, ticket=None)  # type: ignore[arg-type]
        assert [i.index.split("-")[2] for i in items] == ["containers", "unrouted", "containers"]


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ({"index": "i"}, "needs a tag, a match, or both"),
        ({"match": {"": "x"}, "index": "i"}, "dotted field path"),
        ({"match": {"a..b": "x"}, "index": "i"}, "dotted field path"),
        ({"match": {"a": []}, "index": "i"}, "at least one value"),
        ({"match": {"a": {"b": 1}}, "index": "i"}, "routes[0].match.a"),
    ],
)
def test_route_config_errors(route: dict[str, Any], error: str) -> None:
    from logship.config import ConfigError, validate_section

    with pytest.raises(ConfigError, match=re.escape(error)):
        validate_section(AggregatorConfig, {"aggregator": {"routes": [route]}}, "aggregator", "a.yml")


@pytest.mark.parametrize(
    ("event", "message", "flags"),
    [
        ({"message": "hello\n"}, "hello", ["trailing_newline_stripped"]),
        ({"message": "hello\r\n", "log": {"offset": 3}}, "hello", ["trailing_newline_stripped"]),
        ({"message": "a\n\n", "log": {"flags": ["truncated"]}}, "a\n", ["truncated", "trailing_newline_stripped"]),
        ({"message": "\n", "log": {"flags": "x"}}, "", ["x", "trailing_newline_stripped"]),
        ({"message": "inner\nline"}, "inner\nline", None),
    ],
)
def test_trailing_newline_is_stripped_and_flagged(event: dict[str, Any], message: str, flags: Any) -> None:
    encoder = Encoder(default_router())
    item = encoder.encode([{"@timestamp": T, "tags": ["containers"], **event}], WHEN, ticket=None)[0]  # type: ignore[arg-type]
    doc = orjson.loads(item.data.split(b"\n")[1])
    assert doc["message"] == message
    assert doc.get("log", {}).get("flags") == flags


def test_an_event_whose_log_is_not_an_object_keeps_its_message_stripped() -> None:
    encoder = Encoder(default_router())
    item = encoder.encode([{"@timestamp": T, "message": "x\n", "log": "weird"}], WHEN, ticket=None)[0]  # type: ignore[arg-type]
    doc = orjson.loads(item.data.split(b"\n")[1])
    assert doc["message"] == "x" and doc["log"] == "weird"


def test_a_logship_event_keeps_its_trailing_newline() -> None:
    """A joined multi-line record may end in an empty line: that newline is content, not a line end."""
    encoder = Encoder(default_router())
    event = {"@timestamp": T, "tags": ["app"], "message": "trace\n", "agent": {"type": "logship"}}
    item = encoder.encode([event], WHEN, ticket=None)[0]  # type: ignore[arg-type]
    doc = orjson.loads(item.data.split(b"\n")[1])
    assert doc["message"] == "trace\n" and "log" not in doc
