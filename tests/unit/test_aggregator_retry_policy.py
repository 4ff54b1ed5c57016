"""The sink's retry policy (retry.py) and its node health bookkeeping (hosts.py): pure, no I/O."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aggregator.accumulator import BulkItem, Ticket
from aggregator.hosts import HostPool
from aggregator.retry import Action, after_failure, retryable_item, sort_items, split

STATUSES = st.sampled_from([200, 201, 409, 400, 403, 404, 413, 429, 500, 502, 503, 504]) | st.integers(100, 599)


def _items(n: int) -> list[BulkItem]:
    ticket = Ticket(max(n, 1))
    return [BulkItem.of(b'{"create":{}}\n', b'{"k":%d}\n' % k, "i", ticket) for k in range(n)]


@given(st.integers(0, 599), st.integers(1, 10_000))
def test_a_failed_request_is_never_dropped(status: int, docs: int) -> None:
    action = after_failure(status, docs)
    if status in (400, 413):
        # this body can never succeed: narrow it down, and dead-letter only a single event
        assert action is (Action.SPLIT if docs > 1 else Action.DEAD_LETTER)
    else:
        # no answer, 429, 5xx, and 401/403/404 (an operator fixes those): the events are kept
        assert action is Action.RETRY


@given(st.lists(STATUSES, min_size=1, max_size=60))
def test_each_item_gets_exactly_one_fate(statuses: list[int]) -> None:
    items = _items(len(statuses))
    response: dict[str, Any] = {
        "errors": True,
        "items": [{"create": {"status": s, "error": {"type": "t"}}} for s in statuses],
    }
    out = sort_items(items, response)
    dead = [i for i, _, _ in out.dead]
    assert sorted(map(id, out.delivered + out.retry + dead)) == sorted(map(id, items))
    for item, status in zip(items, statuses, strict=True):
        if 200 <= status < 300 or status == 409:
            assert item in out.delivered
        elif status == 429 or status >= 500:
            assert item in out.retry and retryable_item(status)
        else:
            assert item in dead
    assert out.conflicts == statuses.count(409)
    assert sum(out.retry_statuses.values()) == len(out.retry)
    # only 429 es_rejected_execution (and 5xx) items are resent, never the accepted ones
    assert all(s == 429 or s >= 500 for s in out.retry_statuses)


@given(st.integers(0, 50))
def test_a_response_that_does_not_line_up_resends_everything(n: int) -> None:
    items = _items(n + 1)
    out = sort_items(items, {"errors": True, "items": [{"create": {"status": 201}}] * n})
    assert out.retry == items and not out.delivered and not out.dead
    assert sort_items(items, None).retry == items
    assert sort_items(items, {"errors": False}).delivered == items


@given(st.integers(2, 500))
def test_split_keeps_every_item_once(n: int) -> None:
    items = _items(n)
    halves = split(items)
    assert len(halves) == 2 and all(halves) and halves[0] + halves[1] == items


def test_requests_spread_over_healthy_nodes_and_a_dead_one_is_taken_out() -> None:
    pool = HostPool(["http://a", "http://b", "http://c"], backoff=(1.0, 8.0))
    picks = [pool.pick() for _ in range(30)]
    assert {picks.count(u) for u in pool.urls} == {10}
    delay = pool.failed("http://b", now=100.0)
    assert 0 <= delay <= 1.0 and pool.healthy == ["http://a", "http://c"]
    assert "http://b" not in {pool.pick() for _ in range(20)}
    # probed again only when due
    assert pool.due(100.0 + delay - 0.001 if delay > 0.001 else 99.0) == []
    assert pool.due(100.0 + delay) == ["http://b"]
    assert pool.succeeded("http://b") is True and pool.succeeded("http://b") is False
    assert {pool.pick() for _ in range(6)} == {"http://a", "http://b", "http://c"}


def test_backoff_of_a_node_grows_while_it_keeps_failing_and_resets_when_it_answers() -> None:
    pool = HostPool(["http://a", "http://b"], backoff=(1.0, 8.0))
    host = pool._hosts["http://a"]
    for _ in range(6):
        pool.failed("http://a", now=0.0)
    assert host.failures == 6 and host.backoff.cap == 8.0
    pool.succeeded("http://a")
    assert host.failures == 0 and host.backoff.cap == 1.0 and pool.next_due() is None


def test_with_every_node_out_the_one_due_first_is_still_offered() -> None:
    pool = HostPool(["http://a", "http://b"], backoff=(1.0, 1.0))
    pool.failed("http://a", now=10.0)
    pool.failed("http://b", now=0.0)
    assert pool.healthy == [] and pool.pick() == "http://b"
    assert pool.next_due() is not None and pool.next_due() <= 1.0


def test_pick_avoids_a_node_when_another_is_healthy() -> None:
    pool = HostPool(["http://a", "http://b"])
    assert all(pool.pick(avoid="http://a") == "http://b" for _ in range(5))
    pool.failed("http://b", now=0.0)
    assert pool.pick(avoid="http://a") == "http://a"


def test_sniffed_nodes_replace_the_list_and_known_nodes_keep_their_state() -> None:
    pool = HostPool(["http://a", "http://b"])
    pool.failed("http://b", now=0.0)
    pool.replace(["http://b", "http://c", "http://c"])
    assert pool.urls == ["http://b", "http://c"] and pool.healthy == ["http://c"]
    pool.replace([])  # an empty sniff keeps what we have
    assert pool.urls == ["http://b", "http://c"]
