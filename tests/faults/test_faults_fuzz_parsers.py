"""Fuzz the shipper's line parsers with arbitrary bytes: never an exception, never a lost line.

The owners' property tests cover well-formed input (splitting, partial merging, multi-line joining);
these feed hostile input, built from fragments of every format mixed with random bytes, and check
the guarantee of SPEC §5: every line of the file ends up in exactly one record, bounded in size.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.formats import AutoDecoder, PlainDecoder
from shipper.lines import Line, LineSplitter
from shipper.records import Record, message_text

MAX_EVENT = 256


def _line_limit(plain: bool) -> int:
    # as shipper.harvester sizes its splitter: container lines get room for JSON escaping / CRI prefix
    return MAX_EVENT if plain else MAX_EVENT * 2 + 4096


fragments = st.sampled_from(
    [
        b'{"log":"x\\n","stream":"stdout","time":"2026-01-01T00:00:00.1Z"}',
        b'{"log":"x \\"q\\" \\u001b\\n","stream":"stderr","time":"2026-01-01T00:00:00.123456789Z"}',
        b'{"log":"piece","stream":"stderr","time":"2026-01-01T00:00:00Z"}',
        b'{"log":',
        b'{"log":5}',
        b"[]",
        b"2026-01-01T00:00:00.000000001Z stdout P ",
        b"2026-01-01T00:00:00.000000001Z stderr F ",
        b"2026-01-01T00:00:00Z stdout F:x ",
        b"not-a-time stdout F x",
        b"\xff\xfe",
        b"\xc3",
        b"\x00",
        b"\r",
        b"\n",
        b"\r\n",
        b"\xe2\x82",
        b" ",
        b"y" * 400,
        b"z" * 5000,
    ]
)
chunks = st.lists(st.one_of(fragments, st.binary(max_size=40)), max_size=40)


def _lines_of(data: bytes, plain: bool) -> list[Line]:
    sp = LineSplitter(0, _line_limit(plain))
    return sp.feed(data) + sp.flush()


def _decode(data: bytes, plain: bool, cuts: list[int], encoded: bool = False) -> list[Record]:
    """Feed `data` in pieces cut at `cuts`, as reads of a growing file would."""
    dec = PlainDecoder(MAX_EVENT) if plain else AutoDecoder(MAX_EVENT, encoded)
    sp = LineSplitter(0, _line_limit(plain))
    out: list[Record] = []
    prev = 0
    for c in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += dec.decode(sp.feed(data[prev:c]))
        prev = c
    out += dec.decode(sp.flush())
    out += dec.flush()
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=chunks, plain=st.booleans(), cuts=st.lists(st.integers(0, 4000), max_size=6), encoded=st.booleans())
def test_every_line_lands_in_exactly_one_record(
    parts: list[bytes], plain: bool, cuts: list[int], encoded: bool
) -> None:
    data = b"".join(parts)
    records = _decode(data, plain, cuts, encoded)
    lines = _lines_of(data, plain)
    for r in records:
        # JSON-encoded messages only where they were asked for
        assert isinstance(r.message, str) or (encoded and isinstance(r.message, bytes))
        # SPEC: an event longer than max_event_bytes is truncated and flagged, whatever its format
        size = len(message_text(r.message).encode("utf-8", "surrogatepass"))
        assert size <= MAX_EVENT, f"{size}-byte message from {r.flags}"
        assert 0 <= r.offset < max(r.end, 1) or (r.offset == r.end == 0)
    starts = sorted(r.offset for r in records)
    assert len(starts) == len(set(starts)), "two records claim the same first line"
    # each line is the first line of a record, or a piece merged into the record that began earlier
    for line in lines:
        owners = [r for r in records if r.offset == line.offset or (r.offset < line.offset < r.end)]
        if not owners:
            # a merged record's pieces may be interleaved with the other stream's lines: a line is
            # covered by the record whose first piece precedes it and whose end is beyond it
            raise AssertionError(f"line at {line.offset} ({line.data[:40]!r}) is in no record")
    if plain:
        assert [r.offset for r in records] == [ln.offset for ln in lines]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_split_points_do_not_change_the_records(data: bytes, cuts: list[int]) -> None:
    whole = _decode(data, False, [])
    pieces = _decode(data, False, cuts)
    assert [(r.offset, r.message, r.flags) for r in pieces] == [(r.offset, r.message, r.flags) for r in whole]
