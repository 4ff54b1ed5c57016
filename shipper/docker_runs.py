"""Sans-IO: runs of plain Docker json-file lines, checked and taken apart a block of lines at a time.

A plain line is exactly in the json-file driver's layout,
`{"log":"<text>\\n","stream":"stdout|stderr","time":"<RFC 3339, ns, Z>"}`, with a text of valid UTF-8
that has no byte JSON must escape (`"`, `\\`, control bytes), shorter than a quarter of
max_event_bytes. Such a text is its own JSON literal, exactly as orjson.dumps spells it, so the event
builder splices it in as it is and makes the event the per-line decoder would make.

Nothing here runs Python code per line. Everything around the text has a fixed length, so a block is
split at its newlines and each line cut at fixed places from both ends: the text, the stream and the
timestamp come out as the three pieces the event needs. A few bytes and list operations over the whole
block then check that every line had that layout, and fail if any had not. Lines with escapes are found
first (one regex search per such line) and cut out; a block that still fails is halved to find its plain
parts. Lines that are not plain, and blocks where many lines have escapes (JSON application logs), are
left to the per-line decoder (DockerDecoder), which handles every line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import accumulate
from operator import add, itemgetter
from typing import NamedTuple

# A plain line, newline aside, is HEAD, the text, then TAIL_LEN bytes that read as one of TAILS (the
# key of its stream) once ZEROS has mapped their digits to 0. The per-line decoder checks the same layout.
HEAD = b'{"log":"'
_TIME_SHAPE = b"0000-00-00T00:00:00.000000000Z"
TAILS = {b'\\n","stream":"' + s + b'","time":"' + _TIME_SHAPE + b'"}': s.decode() for s in (b"stdout", b"stderr")}
TAIL_LEN = 62
assert {len(tail) for tail in TAILS} == {TAIL_LEN}
ZEROS = bytes.maketrans(b"123456789", b"000000000")
# bytes JSON escapes: a plain line's text has none
SPECIAL = bytes(range(0x20)) + b'"\\'
_STDOUT_TAIL = next(tail for tail, stream in TAILS.items() if stream == "stdout")
# the bytes of a line besides its text: the text's `\n` escape and the newline are among them
LINE_OVERHEAD = len(HEAD) + TAIL_LEN + 1
assert LINE_OVERHEAD == 71
_STREAM_AT = _STDOUT_TAIL.index(b"stdout") - TAIL_LEN
_TIME_AT = _STDOUT_TAIL.index(_TIME_SHAPE) - TAIL_LEN
# where a plain line's parts are, as slices of the line without its newline
HEAD_AT = slice(len(HEAD))
TAIL_AT = slice(-TAIL_LEN, None)
TEXT_AT = slice(len(HEAD), -TAIL_LEN)  # the text without its `\n` escape
# the timestamp to the millisecond (`2026-01-01T12:00:00.123`), as the event keeps it
MS_TIME_AT = slice(_TIME_AT, _TIME_AT + 23)
_HEAD_OF = itemgetter(HEAD_AT)
_TAIL_OF = itemgetter(TAIL_AT)
_TEXT_OF = itemgetter(TEXT_AT)
_STREAM_OF = itemgetter(slice(_STREAM_AT, _STREAM_AT + len(b"stdout")))
_MS_TIME_OF = itemgetter(MS_TIME_AT)
# below this, a block that is not all plain is left to the per-line decoder instead of being halved
_SMALLEST = 16 * 1024
# the lines with escapes are cut out of a block, unless they are more than this share of it so far
_MOSTLY_ESCAPED = 0.25
# a backslash a plain line does not have: every plain line's only one starts its text's `\n` escape
_ESCAPE = re.compile(rb'\\(?!n","stream":")').search


class DockerRun(NamedTuple):
    """Plain lines, in order (see the module docstring): what their events keep of each."""

    times: list[bytes]  # the line's time to the millisecond (23 bytes, without the `Z`)
    texts: list[bytes]  # the `log` literal without its final `\n` escape
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
    lines = data.split(b"\n")
    if lines.pop() != b"" or not lines or min(map(len, lines)) < LINE_OVERHEAD - 1:
        return None
    n = len(lines)
    if b"".join(map(_HEAD_OF, lines)) != HEAD * n:
        return None
    # the tails, with either stream and any digits, must all read stdout's
    tails = b"".join(map(_TAIL_OF, lines)).replace(b'"stderr"', b'"stdout"').translate(ZEROS)
    if tails != _STDOUT_TAIL * n:
        return None
    texts = list(map(_TEXT_OF, lines))
    joined = b"".join(texts)
    if len(joined.translate(None, SPECIAL)) != len(joined):
        return None
    lengths = list(map(len, texts))
    if max(lengths) >= max_text:
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")  # the layout is ASCII: this checks every text
        except UnicodeDecodeError:
            return None
    # offset of line i: the run's start + the lengths of the texts before it + i lines' fixed bytes
    offsets = list(
        map(add, accumulate(lengths, initial=0), range(offset, offset + LINE_OVERHEAD * (n + 1), LINE_OVERHEAD))
    )
    return DockerRun(list(map(_MS_TIME_OF, lines)), texts, list(map(_STREAM_OF, lines)), offsets)


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
