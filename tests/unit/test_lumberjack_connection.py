"""The reader's sans-IO connection: windows out of any chunking of the stream, limits, what EOF and
the idle clock decide; no sockets."""

from __future__ import annotations

import itertools
import logging
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logship.lumberjack.codec import ProtocolError, encode_window
from logship.lumberjack.connection import ConnectionClosed, ReaderConnection, ServerLimits

payload = st.binary(min_size=0, max_size=64)
windows_st = st.lists(st.lists(payload, min_size=1, max_size=8), min_size=1, max_size=6)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@given(windows_st, st.lists(st.integers(0, 10_000), max_size=20), st.sampled_from([0, 1, 6]))
def test_any_chunking_gives_the_same_windows(windows: list[list[bytes]], cuts: list[int], level: int) -> None:
    stream = b"".join(encode_window(w, level) for w in windows)
    conn = ReaderConnection(ServerLimits(), now=0.0)
    out = [got for chunk in chunked(stream, cuts) for got in conn.receive(chunk)]
    assert [w.payloads for w in out] == windows
    assert [w.last_seq for w in out] == [len(w) for w in windows]
    assert [w.nbytes for w in out] == [sum(map(len, w)) for w in windows]
    assert not conn.mid_window
    conn.eof()  # a clean end between windows


@given(windows_st, st.integers(1, 10_000))
def test_eof_inside_a_window_is_a_truncated_window(windows: list[list[bytes]], cut: int) -> None:
    stream = b"".join(encode_window(w) for w in windows)
    cut = cut % len(stream)
    if cut == 0:
        return
    conn = ReaderConnection(ServerLimits(), now=0.0)
    got = conn.receive(stream[:cut])
    boundaries = {sum(len(encode_window(w)) for w in windows[:i]) for i in range(len(windows) + 1)}
    if cut in boundaries:
        conn.eof()
        assert len(got) == sorted(boundaries).index(cut)
    else:
        with pytest.raises(ConnectionClosed) as err:
            conn.eof()
        assert err.value.reason == "truncated_frame" and "the window was not acked" in str(err.value)


@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=10), st.integers(1, 600))
def test_max_window_bytes_holds_however_the_bytes_come(payloads: list[bytes], limit: int) -> None:
    conn = ReaderConnection(ServerLimits(max_window_bytes=limit), now=0.0)
    stream = encode_window(payloads)
    total = sum(map(len, payloads))
    if total > limit:
        with pytest.raises(ProtocolError) as err:
            for i in range(0, len(stream), 7):
                conn.receive(stream[i : i + 7])
        assert err.value.reason == "window_too_large"
    else:
        assert [w.payloads for w in conn.receive(stream)] == [payloads]


def test_frames_out_of_order_are_protocol_errors() -> None:
    data_frame = b"2J" + struct.pack(">II", 1, 2) + b"{}"
    with pytest.raises(ProtocolError, match="data frame outside a window"):
        ReaderConnection(ServerLimits(), 0.0).receive(data_frame)
    conn = ReaderConnection(ServerLimits(), 0.0)
    with pytest.raises(ProtocolError, match=r"new window before the previous one was complete \(0 of 2"):
        conn.receive(b"2W" + struct.pack(">I", 2) + b"2W" + struct.pack(">I", 1))
    with pytest.raises(ProtocolError) as err:
        ReaderConnection(ServerLimits(max_window_size=10), 0.0).receive(b"2W" + struct.pack(">I", 11))
    assert err.value.reason == "window_too_large"


@given(
    st.lists(payload, min_size=1, max_size=8),
    st.integers(0, 7),
    st.integers(0, 600),
    st.lists(st.integers(0, 10_000), max_size=6),
)
def test_more_data_frames_than_the_window_holds(payloads: list[bytes], size: int, limit: int, cuts: list[int]) -> None:
    """Frames past the window's size are an error however they are chunked; the window's own bytes over
    max_window_bytes are reported as such first, as frame-by-frame reading would."""
    size = min(size, len(payloads) - 1)
    stream = (
        b"2W"
        + struct.pack(">I", size)
        + b"".join(b"2J" + struct.pack(">II", i, len(p)) + p for i, p in enumerate(payloads, 1))
    )
    conn = ReaderConnection(ServerLimits(max_window_bytes=limit), now=0.0)
    with pytest.raises(ProtocolError) as err:
        for chunk in chunked(stream, cuts):
            conn.receive(chunk)
    too_large = limit and sum(map(len, payloads[:size])) > limit
    assert err.value.reason == ("window_too_large" if too_large else "unexpected_frame")


def test_admitted_windows_bound_reading_and_the_idle_clock_follows_progress() -> None:
    limits = ServerLimits(idle_timeout=10.0, max_windows_in_flight=2)
    conn = ReaderConnection(limits, now=100.0)
    assert conn.read_deadline(105.0) == 110.0
    conn.check_idle(109.9)
    with pytest.raises(ConnectionClosed) as idle:
        conn.check_idle(110.0)
    assert idle.value.reason == "idle_timeout" and idle.value.level == logging.INFO
    a, b = conn.receive(encode_window([b"a"]) + encode_window([b"b", b"c"]))
    ta = conn.admit(a, 111.0)
    conn.admit(b, 112.0)
    assert not conn.windows.has_room()  # two in flight: the server stops reading
    # while windows are being handled the writer is waiting for acks, not idle
    assert conn.read_deadline(500.0) == 510.0
    conn.check_idle(500.0)
    conn.windows.finish(ta, ok=True)
    assert conn.windows.take_acks() == [1]
    conn.acked(501.0)
    conn.windows.finish(ta + 1, ok=True)
    assert conn.windows.take_acks() == [2] and conn.windows.has_room()
    conn.acked(502.0)
    assert conn.read_deadline(503.0) == 512.0


def test_a_window_dripping_in_is_closed_as_slow_not_idle() -> None:
    conn = ReaderConnection(ServerLimits(idle_timeout=5.0), now=0.0)
    stream = encode_window([b"x" * 50, b"y"])
    for i in range(0, 30):
        assert conn.receive(stream[i : i + 1]) == []
    with pytest.raises(ConnectionClosed) as err:
        conn.check_idle(5.0)
    assert err.value.reason == "slow_window" and "window not complete within 5s" in str(err.value)
