"""`@metadata.index_family` (a pod's logship.io/index annotation) routes to its own logstash-logs family."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from aggregator.accumulator import Ticket
from aggregator.bulk import Encoder
from aggregator.routing import Router
from logship.config import ConfigError

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _index(item_data: bytes) -> str:
    return str(orjson.loads(item_data.split(b"\n")[0])["create"]["_index"])


def test_family_routes_ahead_of_tags_and_is_stripped() -> None:
    encoder = Encoder(Router([("containers", "logstash-logs-containers-%{+YYYY.MM.dd}")], "unrouted"))
    ts = "2026-02-28T23:59:59.123Z"
    events = [
        {"@metadata": {"_id": "a"}, "tags": ["containers"], "@timestamp": ts},
        {"@metadata": {"_id": "b", "index_family": "payments"}, "tags": ["containers"], "@timestamp": ts},
        {"@metadata": {"_id": "c", "index_family": "Bad Name"}, "tags": ["containers"], "@timestamp": ts},
        {"@metadata": {"_id": "d"}, "tags": ["containers"], "@timestamp": ts},
    ]
    items = encoder.encode(events, RECEIVED, Ticket(len(events)))
    assert [_index(i.data) for i in items] == [
        "logstash-logs-containers-2026.02.28",
        "logstash-logs-payments-2026.02.28",
        "logstash-logs-containers-2026.02.28",  # an unusable family name falls back to the routes
        "logstash-logs-containers-2026.02.28",  # and the fast cache was not filled with the family's index
    ]
    assert all(b"index_family" not in i.data for i in items)


def test_family_index_is_configurable_and_covered_by_the_template() -> None:
    import pytest

    from aggregator.config import AggregatorConfig
    from aggregator.template import index_patterns

    router = Router(
        [("containers", "t-logstash-logs-containers-%{+YYYY.MM.dd}")],
        "t-logstash-logs-unrouted-%{+YYYY}",
        "t-logstash-logs-{family}-%{+YYYY.MM.dd}",
    )
    pattern = router.family_pattern("ledger")
    assert pattern is not None and pattern.format(RECEIVED) == "t-logstash-logs-ledger-2026.03.01"
    assert index_patterns(router.patterns) == ["t-logstash-logs-*"]
    with pytest.raises(ConfigError, match=r"family_index: .*family"):
        AggregatorConfig.from_dict({"family_index": "logs-%{+YYYY.MM.dd}"})
