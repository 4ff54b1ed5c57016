"""Sans-IO line splitter: feed chunks of a file, get complete lines with their byte offsets.

The unterminated tail is kept until its newline arrives (or `flush()` when the file is rotated away
and fully read). A line longer than `max_line_bytes` keeps only its first `max_line_bytes` bytes and is
marked truncated; the rest is counted but not buffered, so memory stays bounded whatever the input.
"""

from __future__ import annotations

from typing import NamedTuple


class Line(NamedTuple):
    offset: int  # byte offset of the first byte of the line
    end: int  # byte offset just past the line's newline (the next line's offset)
    data: bytes  # the line without its newline, at most max_line_bytes long
    truncated: bool


_new = tuple.__new__  # builds a Line without the NamedTuple's Python-level __new__ (hot path)


class Block(NamedTuple):
    """Complete lines kept together as the bytes read: for decoders that work on many lines at once."""

    offset: int  # file offset of data[0]
    data: bytes  # whole lines, each with its newline; empty, or ends with a newline
    limit: int  # the splitter's max_line_bytes, which `lines` applies
    line_count: int  # how many lines `data` holds

    def lines(self, start: int = 0, stop: int | None = None) -> list[Line]:
        """The lines of data[start:stop] (`start`, `stop` at line boundaries), as `LineSplitter.feed` gives them."""
        data = self.data[start:stop]
        return split_lines(self.offset + start, data.split(b"\n")[:-1], self.limit)


def split_lines(pos: int, parts: list[bytes], limit: int) -> list[Line]:
    """`parts` (lines without newlines, the first starting at file offset `pos`) as Lines, cut at `limit`."""
    out: list[Line] = []
    append = out.append
    for part in parts:
        end = pos + len(part) + 1
        if len(part) > limit:
            append(Line(pos, end, part[:limit], True))
        else:
            append(_new(Line, (pos, end, part, False)))
        pos = end
    return out


class LineSplitter:
    """Splits a byte stream into lines; offsets are file offsets starting at `offset`."""

    __slots__ = ("_dropped", "_limit", "_tail", "offset")

    def __init__(self, offset: int = 0, max_line_bytes: int = 1024 * 1024) -> None:
        self.offset = offset  # where the buffered (unterminated) tail starts
        self._limit = max_line_bytes
        self._tail = b""  # kept part of the unterminated line
        self._dropped = 0  # bytes of the unterminated line beyond the limit, not kept

    @property
    def pending_bytes(self) -> int:
        """Bytes of the unterminated tail (kept or dropped) not yet returned as a line."""
        return len(self._tail) + self._dropped

    def feed(self, chunk: bytes) -> list[Line]:
        if not chunk:
            return []
        parts = chunk.split(b"\n")
        rest = parts.pop()  # after the last newline: the new unterminated tail (maybe empty)
        out: list[Line] = []
        pos = self.offset
        limit = self._limit
        if parts and (self._tail or self._dropped):
            first = parts[0]
            size = len(self._tail) + self._dropped + len(first)
            data = self._tail + first if not self._dropped else self._tail
            end = pos + size + 1
            truncated = size > limit
            out.append(Line(pos, end, data[:limit] if truncated else data, truncated))
            pos = end
            parts = parts[1:]
            self._tail = b""
            self._dropped = 0
        out += split_lines(pos, parts, limit)
        self.offset = out[-1].end if out else pos
        if rest:
            self._keep(rest)
        return out

    def feed_block(self, chunk: bytes) -> tuple[list[Line], Block]:
        """Like `feed`, but the lines after the one that ends the buffered tail come as one `Block`.

        The block's lines are not cut at max_line_bytes: whoever splits them does (`Block.lines`)."""
        last = chunk.rfind(b"\n")
        if last < 0:
            if chunk:
                self._keep(chunk)
            return [], Block(self.offset, b"", self._limit, 0)
        start = 0
        first: list[Line] = []
        if self._tail or self._dropped:
            start = chunk.index(b"\n") + 1
            first = self.feed(chunk[:start])
        block = Block(self.offset, chunk[start : last + 1], self._limit, chunk.count(b"\n", start))
        self.offset += len(block.data)
        if last + 1 < len(chunk):
            self._keep(chunk[last + 1 :])
        return first, block

    def _keep(self, rest: bytes) -> None:
        if self._dropped:
            self._dropped += len(rest)
            return
        room = self._limit - len(self._tail)
        if len(rest) <= room:
            self._tail += rest
        else:
            self._tail += rest[:room]
            self._dropped = len(rest) - room

    def flush(self) -> list[Line]:
        """Return the unterminated tail as a final line (the file will not grow any more)."""
        size = len(self._tail) + self._dropped
        if not size:
            return []
        line = Line(self.offset, self.offset + size, self._tail, self._dropped > 0)
        self.offset += size
        self._tail = b""
        self._dropped = 0
        return [line]
