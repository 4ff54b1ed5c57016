"""The writer's sans-IO session: ack matching, keepalives, deadlines, and what a dead connection leaves."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logship.lumberjack.codec import ProtocolError, encode_ack
from logship.lumberjack.session import WriterSession


@dataclass(eq=False)
class Win:
    count: int
    chunks: tuple[bytes, ...] = (b"frame",)


def test_windows_close_in_order_on_their_final_ack_and_keepalives_push_the_deadline() -> None:
    s: WriterSession[Win] = WriterSession(timeout=10.0, max_in_flight=2)
    a, b = Win(3), Win(2)
    assert s.write(a, now=0.0) == (b"frame",)
    s.write(b, now=1.0)
    assert not s.has_room and s.deadline == 10.0
    assert s.receive(encode_ack(0), now=5.0) == []  # the reader is still working
    assert s.deadline == 15.0 and not s.expired(14.9) and s.expired(15.0)
    assert s.receive(encode_ack(2), now=6.0) == []  # progress inside the first window
    assert s.receive(encode_ack(3) + encode_ack(2), now=7.0) == [a, b]
    assert s.deadline is None and s.has_room and s.heard


def test_an_ack_cut_anywhere_is_reassembled() -> None:
    s: WriterSession[Win] = WriterSession(timeout=10.0, max_in_flight=1)
    w = Win(7)
    s.write(w, 0.0)
    data = encode_ack(7)
    assert s.receive(data[:1], 1.0) == []
    assert s.receive(data[1:5], 1.0) == []
    assert s.receive(data[5:], 1.0) == [w]


@pytest.mark.parametrize(
    ("acks", "why"),
    [([encode_ack(4)], "beyond the window"), ([encode_ack(2), encode_ack(1)], "no window outstanding")],
)
def test_acks_the_writer_never_asked_for_are_protocol_errors(acks: list[bytes], why: str) -> None:
    s: WriterSession[Win] = WriterSession(timeout=10.0, max_in_flight=1)
    s.write(Win(2), 0.0)
    with pytest.raises(ProtocolError, match=why):
        for data in acks:
            s.receive(data, 1.0)


def test_a_dead_connection_hands_back_its_unacked_windows_oldest_first() -> None:
    s: WriterSession[Win] = WriterSession(timeout=10.0, max_in_flight=3)
    ws = [Win(1), Win(1), Win(1)]
    for w in ws:
        s.write(w, 0.0)
    assert s.receive(encode_ack(1), 1.0) == [ws[0]]
    assert s.take_unacked() == ws[1:]
    assert s.take_unacked() == [] and s.deadline is None


@given(
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    keepalive_every=st.integers(1, 5),
)
def test_any_split_of_acks_with_keepalives_completes_every_window_once_in_order(
    sizes: list[int], cuts: list[int], keepalive_every: int
) -> None:
    s: WriterSession[Win] = WriterSession(timeout=10.0, max_in_flight=len(sizes))
    windows = [Win(n) for n in sizes]
    for w in windows:
        s.write(w, 0.0)
    stream = b""
    for w in windows:
        for seq in range(0, w.count, keepalive_every):
            stream += encode_ack(seq)
        stream += encode_ack(w.count)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    done: list[Win] = []
    for lo, hi in itertools.pairwise(points):
        done += s.receive(stream[lo:hi], 1.0)
    assert done == windows
    assert not s.in_flight and s.deadline is None


def test_ttl_stops_new_windows_and_finishes_once_the_ones_in_flight_are_acked() -> None:
    s: WriterSession[Win] = WriterSession(timeout=10.0, max_in_flight=2, ttl=30.0, opened=100.0)
    a, b = Win(2), Win(2)
    s.write(a, 101.0)
    assert s.wake_at() == 111.0  # the ack deadline comes first
    s.receive(encode_ack(2), 102.0)
    assert s.wake_at() == 130.0 and s.has_room  # nothing in flight: the TTL is next
    s.tick(129.9)
    s.write(b, 129.9)
    s.tick(130.0)
    assert s.retiring and not s.has_room and not s.finished  # b is still on the wire
    with pytest.raises(RuntimeError):
        s.write(Win(1), 130.0)
    assert s.wake_at() == 139.9  # only the ack deadline remains
    assert s.receive(encode_ack(2), 131.0) == [b]
    assert s.finished and s.take_unacked() == []


def test_no_ttl_never_retires_but_retire_does() -> None:
    s: WriterSession[Win] = WriterSession(timeout=10.0, max_in_flight=1)
    s.tick(1e12)
    assert not s.retiring and s.wake_at() is None
    s.retire()
    assert s.finished and not s.has_room


@given(
    st.floats(1.0, 100.0),
    st.lists(st.tuples(st.sampled_from(["write", "ack", "tick"]), st.floats(0.0, 20.0)), max_size=60),
)
def test_ttl_bookkeeping_never_loses_or_duplicates_a_window(ttl: float, steps: list[tuple[str, float]]) -> None:
    s: WriterSession[Win] = WriterSession(timeout=1e9, max_in_flight=3, ttl=ttl, opened=0.0)
    now, expired = 0.0, False
    written: list[Win] = []
    acked: list[Win] = []
    for op, dt in steps:
        now += dt
        if op == "write" and s.has_room:
            w = Win(1)
            s.write(w, now)
            written.append(w)
        elif op == "ack" and s.in_flight:
            acked += s.receive(encode_ack(1), now)
        elif op == "tick":
            s.tick(now)
            expired = expired or now >= ttl
        assert s.retiring == expired  # only the clock retires it, and only once the TTL is over
        if s.retiring:
            assert not s.has_room
        assert s.finished == (s.retiring and not s.in_flight)
    # every window written is either acked or still unacked, in order, exactly once
    assert acked + s.take_unacked() == written
