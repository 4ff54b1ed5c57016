"""Fuzz the aggregator's router with hostile events: never an exception, always a valid index name,
and an `@timestamp` OpenSearch's date field accepts (a bad one is replaced and kept aside, not
left for OpenSearch to reject)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator.routing import Router

ROUTER = Router(
    [("containers", "logstash-logs-containers-%{+YYYY.MM.dd}"), ("app", "logstash-logs-app-%{+YYYY.MM.dd}")],
    "logstash-logs-unrouted-%{+YYYY.MM.dd}",
)
RECEIVED = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
INDEX = re.compile(r"^logstash-logs-(containers|app|unrouted)-\d{4}\.\d{2}\.\d{2}$")

timestamps = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.lists(st.text(max_size=5), max_size=3),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})\Z"),
    st.from_regex(r"\A.{4}-.{2}-.{2}T.{2}:.{2}:.{2}.{0,6}Z\Z"),
    # a valid date with a broken time: the day still names an index, the document would still be rejected
    st.from_regex(r"\A20\d\d-(0[1-9]|1[0-2])-(0[1-9]|1\d)T[0-9a-z]{2}:\d[0-9a-z]:\d{2}(\.\d{3})?Z\Z"),
)
tags = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.lists(st.one_of(st.text(max_size=12), st.integers()), max_size=4),
    st.sampled_from([["containers"], ["app"], ["app", "containers"], "app"]),
)


def _opensearch_accepts(ts: object) -> bool:
    """Accepted by strict_date_optional_time (OpenSearch's default): `yyyy-MM-dd['T'HH:mm[:ss[.S+]]][offset]`
    with every field in range."""
    shape = r"\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?"
    if not isinstance(ts, str) or not re.fullmatch(shape, ts, re.ASCII):
        return False
    try:
        datetime.fromisoformat(ts)
    except ValueError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@example(ts="2026-01-01T25:61:61.000Z", tg=["app"], has_ts=True)
@example(ts="2026-01-01Tab:cd:efZ", tg=["containers"], has_ts=True)
@example(ts="2026-01-01 10:00:00", tg=["app"], has_ts=True)
@given(ts=timestamps, tg=tags, has_ts=st.booleans())
def test_any_event_gets_a_valid_index_and_timestamp(ts: object, tg: object, has_ts: bool) -> None:
    event: dict[str, object] = {"message": "m", "tags": tg}
    if has_ts:
        event["@timestamp"] = ts
    index = ROUTER.index_for(event, RECEIVED)
    assert INDEX.match(index), index
    assert _opensearch_accepts(event["@timestamp"]), event
    if has_ts and event["@timestamp"] != ts:
        assert event["logship"]["invalid_timestamp"] == str(ts)[:256]  # type: ignore[index]


TRICKY = [
    "2026-01-01T10:00:00.123Z",
    "2026-01-01T10:00:00Z",
    "2026-01-01T10:00:00.123456789Z",
    "2026-01-01",
    "2026-01-01T10Z",
    "2026-01-01T10:00Z",
    "2026-01-01T10:00:00+02",
    "2026-01-01T10:00:00+0200",
    "2026-01-01T10:00:00,5+02:00",
    "2026-01-01T00:30:00-11:30",
    "2026-01-01T10:00:00",
    "2026-01-01 10:00:00",
    "2026-01-01T25:00:00Z",
    "2026-01-01T10:61:00Z",
    "2026-01-01T10:00:61Z",
    "2026-02-30T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "2026-01-01Tab:cd:efZ",
    "20260101T100000Z",
    "2026-1-1T10:00:00Z",
    "yesterday",
    "",
    " 2026-01-01T10:00:00Z",
    "2026-01-01T10:00:00Z ",
    "2026-01-01T10:00:00.Z",
    "2026-01-01T10:00:00.1234567890Z",
    "+2026-01-01T10:00:00Z",
    "2026-01-01T10:00:00+25:00",
    "2026-01-01T10:00:00\u0000Z",
    1700000000000,
    None,
    ["2026-01-01"],
]


async def test_repaired_timestamps_are_accepted_by_real_opensearch(os_client: Any, index_prefix: str) -> None:
    """The oracle above agrees with OpenSearch: every event, after routing, indexes without a date error."""
    index = index_prefix + "dates"
    await os_client.indices.create(index=index, body={"mappings": {"properties": {"@timestamp": {"type": "date"}}}})
    body: list[dict[str, Any]] = []
    for i, ts in enumerate(TRICKY):
        event: dict[str, Any] = {"tags": ["app"], "@timestamp": ts, "message": f"m{i}"}
        ROUTER.index_for(event, RECEIVED)
        body += [{"index": {"_index": index, "_id": str(i)}}, event]
    resp = await os_client.bulk(body=body, refresh=True)
    errors = [item["index"].get("error") for item in resp["items"] if item["index"].get("error")]
    assert errors == []
    assert (await os_client.count(index=index))["count"] == len(TRICKY)
