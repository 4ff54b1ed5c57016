"""Sans-IO: runs of plain Docker json-file lines, checked and taken apart a block of lines at a time.

A plain line is exactly in the json-file driver's layout,
`{"log":"<text>\\n","stream":"stdout|stderr","time":"<RFC 3339, ns, Z>"}`, with a text of valid UTF-8
that has no byte JSON must escape (`"`, `\\`, control bytes), shorter than a quarter of
max_event_bytes. Such a text is its own JSON literal, exactly as orjson.dumps spells it, so the event
builder splices it in as it is and makes the event the per-line decoder would make.

Nothing here runs Python code per line: a run is found by splitting a whole block at its quotes and
checking the pieces with a few list and bytes operations, which fail if any line is not plain. Lines
with escapes are found first (one regex search per such line) and cut out; a block that still fails
is halved to find its plain parts. Lines that are not plain, and blocks where many lines have escapes
(JSON application logs), are left to the per-line decoder (DockerDecoder), which handles every line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import accumulate
from operator import add, itemgetter
from typing import NamedTuple

# the quoted pieces of a plain line: `{` log `:` text\n `,` stream `:` stdout `,` time `:` time `}\n`
PIECES = 12
_FIXED = {1: b"log", 2: b":", 4: b",", 5: b"stream", 6: b":", 8: b",", 9: b"time", 10: b":"}
# the bytes of a line besides its text and the text's `\n` escape, newline included
LINE_OVERHEAD = len(b'{"log":"\\n","stream":"stdout","time":"2026-01-01T12:00:00.123456789Z"}\n')
assert LINE_OVERHEAD == 71
_TIME_SHAPE = b"0000-00-00T00:00:00.000000000Z"
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
# what a plain line has only in its layout: 12 quotes, the `\n` escape's backslash, the newline
_SPECIAL = bytes(range(0x20)) + b'"\\'
_LAST_TWO = itemgetter(slice(-2, None))
# below this, a block that is not all plain is left to the per-line decoder instead of being halved
_SMALLEST = 16 * 1024
# the lines with escapes are cut out of a block, unless they are more than this share of it so far
_MOSTLY_ESCAPED = 0.25
# a backslash a plain line does not have: every plain line's only one starts its text's `\n` escape
_ESCAPE = re.compile(rb'\\(?!n","stream":")').search


class DockerRun(NamedTuple):
    """Plain lines, in order (see the module docstring)."""

    times: list[bytes]  # as the line has it: the event keeps the first 23 bytes (ms)
    texts: list[bytes]  # the `log` literal with its final `\n` escape, which the event drops
    streams: list[bytes]  # stdout / stderr
    offsets: list[int]  # every line's offset, then the run's end: one more than the lines

    def without(self, lines: int) -> DockerRun:
        """The run without its first `lines` lines."""
        if not lines:
            return self
        return DockerRun(self.times[lines:], self.texts[lines:], self.streams[lines:], self.offsets[lines:])


def plain_run(data: bytes, offset: int, max_text: int) -> DockerRun | None:
    """`data` (whole lines, starting at file offset `offset`) as a run, or None unless every line is
    plain with a text shorter than `max_text` bytes."""
    pieces = data.split(b'"')
    lines, odd = divmod(len(pieces) - 1, PIECES)
    if odd or not lines or pieces[0] != b"{" or pieces[-1] != b"}\n":
        return None
    if pieces[PIECES:-1:PIECES].count(b"}\n{") != lines - 1:
        return None
    for at, fixed in _FIXED.items():
        if pieces[at::PIECES].count(fixed) != lines:
            return None
    streams = pieces[7::PIECES]
    if streams.count(b"stdout") + streams.count(b"stderr") != lines:
        return None
    times = pieces[11::PIECES]
    if b"".join(times).translate(_ZEROS) != _TIME_SHAPE * lines or min(map(len, times)) != len(_TIME_SHAPE):
        return None
    texts = pieces[3::PIECES]
    # every text ends with the `\n` escape, and the layout leaves no room for any other special byte
    if b"".join(map(_LAST_TWO, texts)) != b"\\n" * lines:
        return None
    if len(data) - len(data.translate(None, _SPECIAL)) != lines * (PIECES + 2):
        return None
    lengths = list(map(len, texts))
    if max(lengths) - 2 >= max_text:
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")  # the layout is ASCII: this checks every text
        except UnicodeDecodeError:
            return None
    # offset of line i: the run's start + the lengths of the texts before it + i lines' fixed bytes
    step = LINE_OVERHEAD - 2
    offsets = list(map(add, accumulate(lengths, initial=0), range(offset, offset + step * (lines + 1), step)))
    return DockerRun(times, texts, streams, offsets)


def split_runs(data: bytes, start: int, stop: int, offset: int, max_text: int) -> Iterator[DockerRun | tuple[int, int]]:
    """The whole lines data[start:stop] (data[0] at file offset `offset`), in order: runs of plain lines,
    and (start, stop) of the stretches of lines left to the per-line decoder."""
    pos = held = start  # lines from `held` to `pos` are left to the per-line decoder
    escaped = 0  # bytes of lines with escapes
    while pos < stop:
        m = _ESCAPE(data, pos, stop)
        if m is None:
            break
        line_start = max(pos, data.rfind(b"\n", pos, m.start()) + 1)
        line_stop = data.index(b"\n", m.start()) + 1
        if line_start > pos:
            if held < pos:
                yield held, pos
            yield from _plain_parts(data, pos, line_start, offset, max_text)
            held = line_start
        escaped += line_stop - line_start
        pos = line_stop
        if escaped > _MOSTLY_ESCAPED * (pos - start) and pos - start > _SMALLEST:
            # JSON application logs: not worth looking further
            yield held, stop
            return
    if held < pos:
        yield held, pos
    yield from _plain_parts(data, pos, stop, offset, max_text)


def _plain_parts(
    data: bytes, start: int, stop: int, offset: int, max_text: int
) -> Iterator[DockerRun | tuple[int, int]]:
    """As `split_runs`, for lines without escapes: whole runs, or halves of them, down to `_SMALLEST`."""
    if start == stop:
        return
    run = plain_run(data[start:stop], offset + start, max_text)
    if run is not None:
        yield run
        return
    mid = data.find(b"\n", (start + stop) // 2, stop - 1) + 1  # a line boundary inside, or 0
    if stop - start > _SMALLEST and mid > start:
        yield from _plain_parts(data, start, mid, offset, max_text)
        yield from _plain_parts(data, mid, stop, offset, max_text)
        return
    yield start, stop
