"""Window assembly and the publisher's bounded, in-order acknowledgement bookkeeping."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shipper.pipeline import Publisher, WindowAssembler
from shipper.registry import Checkpoints


def test_windows_split_batches_and_track_last_resume_per_file() -> None:
    a = WindowAssembler(3)
    full = a.add("f", "/f", (10, "h"), [b"1", b"2"], [10, 20])
    assert full == []
    full = a.add("g", "/g", (10, "h"), [b"3", b"4", b"5", b"6", b"7"], [5, 6, 7, 8, 9])
    assert [w.events for w in full] == [[b"1", b"2", b"3"], [b"4", b"5", b"6"]]
    assert full[0].positions["f"].offset == 20 and full[0].positions["g"].offset == 5
    assert full[1].positions == {"g": full[1].positions["g"]} and full[1].positions["g"].offset == 8
    rest = a.take()
    assert rest is not None and rest.events == [b"7"] and rest.positions["g"].offset == 9
    assert a.take() is None


async def test_publisher_bounds_pending_and_acks_in_order() -> None:
    gates: list[asyncio.Future[None]] = []
    sent: list[Sequence[bytes]] = []

    async def send(events: Sequence[bytes]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gates.append(fut)
        sent.append(events)
        await fut

    cp = Checkpoints()
    pub = Publisher(send, cp, max_pending_windows=2)
    a = WindowAssembler(1)
    windows = a.add("f", "/f", (1, "h"), [b"a", b"b", b"c"], [10, 20, 30])
    await pub.publish(windows[0])
    await pub.publish(windows[1])
    third = asyncio.create_task(pub.publish(windows[2]))
    await asyncio.sleep(0.01)
    assert not third.done(), "a third window must wait while two await their ack"
    gates[1].set_result(None)  # the later window is acknowledged first
    await third
    await asyncio.sleep(0.01)
    assert "f" not in cp.entries, "an ack for a later window moved the file past an unacknowledged one"
    gates[0].set_result(None)
    await asyncio.sleep(0.01)
    assert cp.entries["f"].offset == 20
    gates[2].set_result(None)
    assert await pub.drain(1.0)
    assert cp.entries["f"].offset == 30
    assert [list(s) for s in sent] == [[b"a"], [b"b"], [b"c"]]
