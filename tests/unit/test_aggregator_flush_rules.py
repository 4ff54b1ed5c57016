"""When a partial batch goes out (`Accumulator.flush_in`), on a fake clock: the `now` passed in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aggregator.accumulator import Accumulator, BulkItem, Ticket


def _item(ticket: Ticket, size: int = 10) -> BulkItem:
    return BulkItem.of(b"a" * (size // 2) + b"\n", b"s" * (size - size // 2 - 1) + b"\n", "idx", ticket)


def test_empty_means_nothing_to_send() -> None:
    acc = Accumulator(1000, 100, max_delay=1.0)
    assert acc.flush_in(0.0, in_flight=0, draining=False) is None
    assert acc.flush_in(0.0, in_flight=3, draining=True) is None


def test_a_small_batch_waits_for_max_delay_while_requests_are_in_flight() -> None:
    acc = Accumulator(10_000, 100, max_delay=1.0)
    acc.add_many([_item(Ticket(1))], now=10.0)
    assert acc.flush_in(10.0, in_flight=1, draining=False) == 1.0
    assert acc.flush_in(10.25, in_flight=1, draining=False) == 0.75
    assert acc.flush_in(11.0, in_flight=1, draining=False) == 0.0  # waited max_delay
    # no request in flight: nobody would come back to fill it, so it goes at once
    assert acc.flush_in(10.0, in_flight=0, draining=False) == 0.0
    # shutting down: everything goes at once
    assert acc.flush_in(10.0, in_flight=5, draining=True) == 0.0


def test_a_quarter_full_batch_takes_an_idle_slot_at_once() -> None:
    acc = Accumulator(10_000, 100, max_delay=5.0)
    t = Ticket(25)
    acc.add_many([_item(t) for _ in range(24)], now=0.0)
    assert acc.flush_in(0.0, in_flight=2, draining=False) == 5.0
    acc.add_many([_item(t)], now=0.1)
    assert acc.flush_in(0.1, in_flight=2, draining=False) == 0.0  # 25 of 100 documents
    by_bytes = Accumulator(1000, 1000, max_delay=5.0)
    by_bytes.add_many([_item(Ticket(1), 250)], now=0.0)
    assert by_bytes.flush_in(0.0, in_flight=2, draining=False) == 0.0  # 250 of 1000 bytes


def test_the_clock_starts_with_the_first_item_of_each_batch() -> None:
    acc = Accumulator(10_000, 8, max_delay=1.0)
    t = Ticket(9)
    full = acc.add_many([_item(t) for _ in range(8)], now=0.0)
    assert len(full) == 1 and len(acc) == 0  # a full batch never waits
    acc.add_many([_item(t)], now=3.0)
    assert acc.flush_in(3.5, in_flight=1, draining=False) == 0.5
    acc.take()
    assert acc.flush_in(100.0, in_flight=1, draining=False) is None


@given(
    sizes=st.lists(st.integers(2, 200), min_size=1, max_size=40),
    max_docs=st.integers(1, 200),
    max_bytes=st.integers(50, 20_000),
    max_delay=st.floats(0.0, 10.0),
    start=st.floats(0.0, 1e6),
    waited=st.floats(0.0, 20.0),
    in_flight=st.integers(0, 8),
    draining=st.booleans(),
)
def test_flush_rules_hold_for_any_open_batch(
    sizes: list[int],
    max_docs: int,
    max_bytes: int,
    max_delay: float,
    start: float,
    waited: float,
    in_flight: int,
    draining: bool,
) -> None:
    acc = Accumulator(max_bytes, max_docs, max_delay=max_delay)
    t = Ticket(len(sizes))
    acc.add_many([_item(t, s) for s in sizes], now=start)
    now = start + waited
    wait = acc.flush_in(now, in_flight=in_flight, draining=draining)
    if len(acc) == 0:
        assert wait is None
        return
    assert wait is not None and 0.0 <= wait <= max_delay
    quarter = len(acc) * 4 >= max_docs or acc.nbytes * 4 >= max_bytes
    must_go = draining or in_flight == 0 or quarter or acc.age(now) >= max_delay
    assert (wait == 0.0) == must_go
    if not must_go:
        # it never waits beyond max_delay from its first item
        assert abs((now + wait) - (acc.oldest or 0.0) - max_delay) < 1e-6 * max(1.0, now)
