"""WindowScheduler: acks in admission order, bounds on windows and bytes, nothing acked past a failure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logship.lumberjack.windows import WindowScheduler


def test_acks_wait_for_earlier_windows() -> None:
    s = WindowScheduler(4)
    a, b = s.admit(3, 10), s.admit(5, 10)
    s.finish(b, ok=True)
    assert s.take_acks() == []
    s.finish(a, ok=True)
    assert s.take_acks() == [3, 5]
    assert s.pending == 0 and s.pending_bytes == 0


def test_failure_blocks_it_and_later_windows_not_earlier_ones() -> None:
    s = WindowScheduler(4)
    a, b, c = s.admit(1, 0), s.admit(2, 0), s.admit(3, 0)
    s.finish(c, ok=True)
    s.finish(b, ok=False)
    assert s.failed and not s.has_room()
    assert s.failed_head is None  # window a may still be acked
    s.finish(a, ok=True)
    assert s.take_acks() == [1]
    assert s.failed_head == b
    assert s.take_acks() == []


def test_bounds() -> None:
    s = WindowScheduler(2, max_bytes=100)
    s.admit(1, 60)
    assert s.has_room()
    s.admit(1, 60)
    assert not s.has_room()
    with pytest.raises(RuntimeError):
        s.admit(1, 1)
    s2 = WindowScheduler(8, max_bytes=100)
    s2.admit(1, 100)
    assert not s2.has_room()  # the bytes bound, not the count
    with pytest.raises(ValueError):
        WindowScheduler(0)


# Each step: admit a window (if there is room) or finish one pending window (chosen by index) ok/failed.
steps = st.lists(st.tuples(st.booleans(), st.integers(0, 50), st.booleans()), max_size=80)


@given(steps, st.integers(1, 5), st.integers(0, 300))
def test_any_interleaving_acks_a_prefix_in_order_within_bounds(
    ops: list[tuple[bool, int, bool]], max_windows: int, max_bytes: int
) -> None:
    s = WindowScheduler(max_windows, max_bytes)
    admitted: list[int] = []  # tickets in admission order; ticket t's last seq is t + 1
    unfinished: list[int] = []
    outcome: dict[int, bool] = {}
    acked: list[int] = []
    for admit, n, ok in ops:
        if admit and s.has_room():
            t = s.admit(len(admitted) + 1, n)
            assert t == len(admitted)
            admitted.append(t)
            unfinished.append(t)
        elif unfinished:
            t = unfinished.pop(n % len(unfinished))
            s.finish(t, ok)
            outcome[t] = ok
        acked += s.take_acks()
        assert s.pending <= max_windows
        assert s.pending_bytes >= 0
    # What was acked: exactly the windows before the first failed or unfinished one, in order, once.
    prefix = []
    for t in admitted:
        if not outcome.get(t, False):
            break
        prefix.append(t + 1)
    assert acked == prefix
    assert s.pending == len(admitted) - len(acked)
    first_failed = next((t for t in admitted if outcome.get(t) is False), None)
    assert s.failed == (first_failed is not None)
    assert s.failed_head == (first_failed if first_failed is not None and len(acked) == first_failed else None)
