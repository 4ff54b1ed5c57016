"""Multi-line joining of Java stack traces: start pattern, max_lines, timeout, checkpoint safety."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.formats import PlainDecoder
from shipper.lines import LineSplitter
from shipper.multiline import MultilineJoiner
from shipper.records import Record

START = r"^\d{4}-\d{2}-\d{2}[ T]"


def records(text: str) -> list[Record]:
    return PlainDecoder(1 << 20).decode(LineSplitter().feed(text.encode()))


def test_stack_trace_joined() -> None:
    text = (
        "2026-01-01 12:00:00 ERROR boom\n"
        "java.lang.RuntimeException: x\n"
        "\tat a.b(C.java:1)\n"
        "2026-01-01 12:00:01 INFO next\n"
    )
    j = MultilineJoiner(START, 500, 5.0, 1 << 20)
    out = j.push(records(text), now=0.0)
    assert len(out) == 1
    assert out[0].message == "2026-01-01 12:00:00 ERROR boom\njava.lang.RuntimeException: x\n\tat a.b(C.java:1)"
    assert out[0].flags == ("multiline",)
    assert out[0].offset == 0
    # the INFO line is pending: the checkpoint after the first event stops at its start
    assert out[0].resume == text.index("2026-01-01 12:00:01")
    assert j.pending_start() == out[0].resume
    assert j.flush_due(4.9) == []
    (last,) = j.flush_due(5.0)
    assert last.message == "2026-01-01 12:00:01 INFO next" and last.flags == ()
    assert last.resume == len(text)


def test_max_lines_starts_a_new_event_without_dropping() -> None:
    text = "2026-01-01 12:00:00 start\n" + "".join(f"cont {i}\n" for i in range(5))
    j = MultilineJoiner(START, 3, 5.0, 1 << 20)
    out = j.push(records(text), 0.0) + j.flush()
    assert [o.message for o in out] == ["2026-01-01 12:00:00 start\ncont 0\ncont 1", "cont 2\ncont 3\ncont 4"]


def test_max_bytes_truncates() -> None:
    text = "2026-01-01 12:00:00 start\n" + "x" * 3000 + "\n" + "y" * 3000 + "\n"
    j = MultilineJoiner(START, 500, 5.0, 2048)
    (ev,) = j.push(records(text), 0.0) + j.flush()
    assert "truncated" in ev.flags and len(ev.message.encode()) <= 2048


line_st = st.one_of(
    st.just("2026-01-01 12:00:00 rec"),
    st.text(alphabet="abc \t:", max_size=10).filter(lambda s: not s[:1].isdigit()),
)


@settings(max_examples=200)
@given(lines=st.lists(line_st, min_size=1, max_size=30), max_lines=st.integers(1, 6), cuts=st.lists(st.integers(0, 30)))
def test_joining_loses_nothing_and_is_chunking_independent(lines: list[str], max_lines: int, cuts: list[int]) -> None:
    text = "".join(line + "\n" for line in lines)
    recs = records(text)
    whole = MultilineJoiner(START, max_lines, 5.0, 1 << 20)
    out_whole = whole.push(recs, 0.0) + whole.flush()
    pieces = MultilineJoiner(START, max_lines, 5.0, 1 << 20)
    out_pieces: list[Record] = []
    prev = 0
    for c in [*sorted(set(min(c, len(recs)) for c in cuts)), len(recs)]:
        out_pieces += pieces.push(recs[prev:c], 0.0)
        prev = c
    out_pieces += pieces.flush()
    assert out_whole == out_pieces
    # every line is in exactly one event, in order
    assert "\n".join(e.message for e in out_whole) == "\n".join(lines)
    assert all(len(e.message.split("\n")) <= max_lines for e in out_whole)
    # replaying from any event's checkpoint reproduces the following events exactly
    for i, ev in enumerate(out_whole):
        rest = [r for r in recs if r.offset >= ev.resume]
        replay = MultilineJoiner(START, max_lines, 5.0, 1 << 20)
        assert replay.push(rest, 0.0) + replay.flush() == out_whole[i + 1 :]
