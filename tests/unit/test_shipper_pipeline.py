"""Window assembly, the sender's bounded queue, and in-order acknowledgement bookkeeping."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from logship.lumberjack.client import EncodedWindow, LumberjackClient
from logship.lumberjack.codec import DataFrame, Decoder
from shipper.pipeline import Sender, WindowAssembler
from shipper.registry import Checkpoints


def test_windows_split_batches_and_track_last_resume_per_file() -> None:
    cp = Checkpoints()
    a = WindowAssembler(3, cp)
    full = a.add("f", "/f", (10, "h"), [b"1", b"2"], [10, 20])
    assert full == []
    full = a.add("g", "/g", (10, "h"), [b"3", b"4", b"5", b"6", b"7"], [5, 6, 7, 8, 9])
    assert [w.events for w in full] == [[b"1", b"2", b"3"], [b"4", b"5", b"6"]]
    assert full[0].positions["f"].offset == 20 and full[0].positions["g"].offset == 5
    assert full[1].positions == {"g": full[1].positions["g"]} and full[1].positions["g"].offset == 8
    assert [w.wid for w in full] == [0, 1] and cp.pending_windows == 2  # sealed = opened in order
    rest = a.take()
    assert rest is not None and rest.events == [b"7"] and rest.positions["g"].offset == 9 and rest.wid == 2
    assert a.take() is None


def test_a_window_built_but_never_sent_holds_back_every_later_checkpoint() -> None:
    """The shutdown bug: windows dropped while the reader waited must not let a later ack pass them."""
    cp = Checkpoints()
    a = WindowAssembler(2, cp)
    built = a.add("f", "/f", (1, "h"), [b"0", b"1", b"2", b"3", b"4", b"5", b"6"], [1, 2, 3, 4, 5, 6, 7])
    first, dropped = built[0], built[1:]
    last = a.take()
    assert last is not None and len(dropped) == 2
    cp.ack(first.wid, 1.0)
    cp.ack(last.wid, 2.0)  # the partial window is sent at shutdown and acknowledged
    assert cp.entries["f"].offset == 2, "the checkpoint moved past events that were never sent"


def test_rekey_moves_the_partial_window_of_a_retired_generation() -> None:
    cp = Checkpoints()
    a = WindowAssembler(10, cp)
    a.add("k", "/f", (5, "old"), [b"a"], [5])
    a.rekey("k", "k@old")
    a.add("k", "/f", (3, "new"), [b"b"], [3])
    w = a.take()
    assert w is not None
    assert w.positions["k@old"].fp_hash == "old" and w.positions["k"].fp_hash == "new"


async def test_sender_bounds_queue_and_in_flight_and_applies_acks_in_order() -> None:
    gates: list[asyncio.Future[None]] = []
    sent: list[Sequence[bytes]] = []

    async def send(events: Sequence[bytes]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gates.append(fut)
        sent.append(events)
        await fut

    cp = Checkpoints()
    sender = Sender(send, cp, max_pending_windows=2, max_queued_windows=1)
    sender.start()
    windows = WindowAssembler(1, cp).add("f", "/f", (1, "h"), [b"a", b"b", b"c", b"d"], [10, 20, 30, 40])
    for w in windows[:3]:
        await sender.put(w)  # two go in flight, one waits in the queue
    fourth = asyncio.create_task(sender.put(windows[3]))
    await asyncio.sleep(0.01)
    assert sender.in_flight == 2 and sender.queued == 1
    assert not fourth.done(), "a full queue must make the reader wait"
    gates[1].set_result(None)  # the later window is acknowledged first
    await fourth
    await asyncio.sleep(0.01)
    assert "f" not in cp.entries, "an ack for a later window moved the file past an unacknowledged one"
    gates[0].set_result(None)
    await asyncio.sleep(0.01)
    assert cp.entries["f"].offset == 20
    for g in gates[2:]:
        g.set_result(None)
    await asyncio.sleep(0.01)
    for g in gates[2:]:
        if not g.done():
            g.set_result(None)
    assert await sender.drain(2.0)
    assert cp.entries["f"].offset == 40
    assert [list(s) for s in sent] == [[b"a"], [b"b"], [b"c"], [b"d"]]
    await sender.close()


@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=12),
    window=st.integers(1, 5),
    acked=st.lists(st.booleans(), max_size=20),
)
def test_checkpoint_never_passes_an_unacknowledged_event(sizes: list[int], window: int, acked: list[bool]) -> None:
    """Any mix of batches, window sizes and acked/unacked windows: the checkpoint is the end of the longest
    acknowledged prefix of windows."""
    cp = Checkpoints()
    a = WindowAssembler(window, cp)
    offset, wins = 0, []
    for n in sizes:
        resumes = list(range(offset + 1, offset + n + 1))
        offset += n
        wins += a.add("f", "/f", (1, "h"), [b"x"] * n, resumes)
    last = a.take()
    if last is not None:
        wins.append(last)
    flags = (acked + [False] * len(wins))[: len(wins)]
    for w, ok in reversed(list(zip(wins, flags, strict=True))):
        if ok:
            cp.ack(w.wid, 1.0)
    prefix = 0
    for w, ok in zip(wins, flags, strict=True):
        if not ok:
            break
        prefix = w.positions["f"].offset
    assert (cp.entries["f"].offset if "f" in cp.entries else 0) == prefix


async def test_a_queued_window_is_kept_only_as_the_output_encodes_it() -> None:
    """With the client's window writer, events are encoded as they are added: a window being assembled,
    waiting to be sent or waiting for its ack never holds them as a list as well."""
    client = LumberjackClient(["127.0.0.1:1"], compression_level=3)
    sent: list[Sequence[bytes] | EncodedWindow] = []
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    acked: list[int] = []

    async def send(window: Sequence[bytes] | EncodedWindow) -> None:
        sent.append(window)
        await gate

    cp = Checkpoints()
    sender = Sender(send, cp, 1, 1, on_acked=acked.append)
    sender.start()
    events = [b'{"message":"line %d"}' % i for i in range(50)]
    assembler = WindowAssembler(50, cp, writer=client.new_window)
    assert assembler.add("f", "/f", (1, "h"), events[:20], list(range(1, 21))) == []
    assert len(assembler) == 20
    [window] = assembler.add("f", "/f", (1, "h"), events[20:], list(range(21, 51)))
    assert window.events == [] and window.count == 50 and window.writer is not None
    await sender.put(window)
    await asyncio.sleep(0.01)
    assert window.writer is None
    [wire] = sent
    assert isinstance(wire, EncodedWindow) and wire.size == 50
    assert [f.payload for f in Decoder().feed(b"".join(wire.chunks)) if isinstance(f, DataFrame)] == events
    gate.set_result(None)
    assert await sender.drain(2.0)
    assert acked == [50] and cp.entries["f"].offset == 50
    await sender.close()


@given(
    batches=st.lists(st.lists(st.integers(1, 40), min_size=1, max_size=10), min_size=1, max_size=6),
    size=st.integers(1, 6),
    max_bytes=st.integers(0, 60),
)
def test_windows_are_sealed_at_the_event_count_or_before_the_byte_limit(
    batches: list[list[int]], size: int, max_bytes: int
) -> None:
    """Any batches of events of any sizes: every event once, in order; no window over `size` events nor,
    unless it holds one event, over `max_bytes`; and a window is sealed only when the next event would
    not fit (so windows are as full as the limits allow)."""
    cp = Checkpoints()
    a = WindowAssembler(size, cp, max_bytes)
    sent: list[bytes] = []
    windows = []
    offset = 0
    for k, sizes in enumerate(batches):
        events = [b"%d:" % (offset + i) + b"x" * s for i, s in enumerate(sizes)]
        sent.extend(events)
        windows += a.add("f", "/f", (1, "h"), events, [offset + i + 1 for i in range(len(events))])
        offset += len(events)
        assert all(w.positions["f"].offset == sent.index(w.events[-1]) + 1 for w in windows if w.events), k
    rest = a.take()
    all_windows = windows + ([rest] if rest is not None else [])
    assert [e for w in all_windows for e in w.events] == sent
    for w in all_windows:
        nbytes = sum(map(len, w.events))
        assert 1 <= len(w.events) <= size
        assert not max_bytes or nbytes <= max_bytes or len(w.events) == 1
    for w, after in zip(windows, all_windows[1:], strict=False):
        nbytes = sum(map(len, w.events))
        fits_one_more = len(w.events) < size and (not max_bytes or nbytes + len(after.events[0]) <= max_bytes)
        assert not fits_one_more, "a window was sealed although the next event fitted"
