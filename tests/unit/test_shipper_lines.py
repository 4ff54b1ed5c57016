"""Line splitting: any chunking of the same bytes gives the same lines and offsets."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.lines import Line, LineSplitter


def split_all(data: bytes, cuts: list[int], limit: int, start: int = 0) -> tuple[list[Line], LineSplitter]:
    s = LineSplitter(start, limit)
    out: list[Line] = []
    prev = 0
    for c in [*sorted(set(cuts)), len(data)]:
        out += s.feed(data[prev:c])
        prev = c
    return out, s


def reference(data: bytes, limit: int, start: int = 0) -> tuple[list[Line], int]:
    """Straightforward model: every newline-terminated line, truncated at limit."""
    out = []
    pos = start
    body = data
    while b"\n" in body:
        line, body = body.split(b"\n", 1)
        out.append(Line(pos, pos + len(line) + 1, line[:limit], len(line) > limit))
        pos += len(line) + 1
    return out, pos


def test_keeps_unterminated_tail_until_newline() -> None:
    s = LineSplitter()
    assert s.feed(b"abc\nde") == [Line(0, 4, b"abc", False)]
    assert s.pending_bytes == 2
    assert s.feed(b"f") == []
    assert s.feed(b"\n\n") == [Line(4, 8, b"def", False), Line(8, 9, b"", False)]
    assert s.offset == 9 and s.pending_bytes == 0


def test_long_line_truncated_and_memory_bounded() -> None:
    s = LineSplitter(10, max_line_bytes=8)
    assert s.feed(b"0123456789" * 3) == []
    assert s.pending_bytes == 30
    assert len(s._tail) == 8  # only the kept part is buffered
    assert s.feed(b"xx\nok\n") == [Line(10, 43, b"01234567", True), Line(43, 46, b"ok", False)]


def test_flush_returns_tail_as_last_line() -> None:
    s = LineSplitter()
    s.feed(b"a\nlast")
    assert s.flush() == [Line(2, 6, b"last", False)]
    assert s.flush() == []
    assert s.offset == 6


# bytes with many newlines, cut anywhere, split at any line limit from any file offset
chunked_lines = given(
    data=st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"\n")),
    cuts=st.lists(st.integers(0, 300), max_size=20),
    limit=st.integers(1, 40),
    start=st.integers(0, 10**9),
)


@settings(max_examples=300)
@chunked_lines
def test_any_chunking_gives_the_same_lines(data: bytes, cuts: list[int], limit: int, start: int) -> None:
    cuts = [c for c in cuts if c <= len(data)]
    got, s = split_all(data, cuts, limit, start)
    want, end = reference(data, limit, start)
    assert got == want
    assert s.offset == end
    assert s.pending_bytes == len(data) - (end - start)
    tail = s.flush()
    if s.offset != end:
        assert tail[0].offset == end and tail[0].end == start + len(data)


@settings(max_examples=300)
@chunked_lines
def test_blocks_hold_the_same_lines(data: bytes, cuts: list[int], limit: int, start: int) -> None:
    cuts = [c for c in cuts if c <= len(data)]
    s = LineSplitter(start, limit)
    got: list[Line] = []
    for a, b in itertools.pairwise([0, *sorted(cuts), len(data)]):
        first, block = s.feed_block(data[a:b])
        assert block.offset == (first[-1].end if first else block.offset)
        assert block.data == b"" or block.data.endswith(b"\n")
        assert block.line_count == block.data.count(b"\n")
        got += first + block.lines()
        if block.data:  # any line boundary splits a block's lines the same way
            mid = block.data.find(b"\n") + 1
            assert block.lines(0, mid) + block.lines(mid) == block.lines()
    want, end = reference(data, limit, start)
    assert got == want
    assert s.offset == end
    assert s.pending_bytes == len(data) - (end - start)
