"""Sans-IO multi-line joining (Java stack traces): continuation lines are appended to their record.

A record whose message matches `start_pattern` starts a new event; any other record is a continuation
of the pending one (or starts one if nothing is pending). An event is emitted when the next one
starts, when it reaches `max_lines` (the following lines start a new event, so nothing is dropped),
or when nothing was added for `timeout` seconds. Joined events carry the `multiline` flag.
"""

from __future__ import annotations

import re

from shipper.records import MULTILINE, TRUNCATED, Record, clip, message_text


class _Group:
    __slots__ = ("first", "flags", "last", "lines", "messages", "size")

    def __init__(self, rec: Record, message: str) -> None:
        self.first = rec
        self.last = rec
        self.messages = [message]
        self.size = len(message)
        self.flags = set(rec.flags)
        self.lines = 1


class MultilineJoiner:
    def __init__(self, start_pattern: str, max_lines: int, timeout: float, max_event_bytes: int) -> None:
        self._start = re.compile(start_pattern).search
        self._max_lines = max_lines
        self._timeout = timeout
        self._max_bytes = max_event_bytes
        self._group: _Group | None = None
        self._updated = 0.0

    @property
    def deadline(self) -> float | None:
        """Monotonic time at which the pending event must be flushed, if any is pending."""
        return None if self._group is None else self._updated + self._timeout

    def pending_start(self) -> int | None:
        return None if self._group is None else self._group.first.offset

    def push(self, records: list[Record], now: float) -> list[Record]:
        out: list[Record] = []
        for rec in records:
            g = self._group
            message = message_text(rec.message)
            if g is None or self._start(message):
                if g is not None:
                    # the new start line is pending now: a checkpoint must not pass it
                    out.append(self._emit(g, min(rec.offset, rec.resume)))
                g = self._group = _Group(rec, message)
            else:
                g.last = rec
                g.flags.update(rec.flags)
                g.lines += 1
                if g.size < self._max_bytes:
                    g.messages.append(message)
                    g.size += len(message) + 1
                else:
                    g.flags.add(TRUNCATED)
            if g.lines >= self._max_lines:
                out.append(self._emit(g, rec.resume))
                self._group = None
            self._updated = now
        return out

    def flush_due(self, now: float) -> list[Record]:
        if self._group is not None and now >= self._updated + self._timeout:
            return self.flush()
        return []

    def flush(self) -> list[Record]:
        g = self._group
        if g is None:
            return []
        self._group = None
        return [self._emit(g, g.last.resume)]

    def _emit(self, g: _Group, resume: int) -> Record:
        first = g.first
        if g.lines == 1:
            return first._replace(resume=resume)
        message, cut = clip("\n".join(g.messages), self._max_bytes)
        flags = g.flags | {MULTILINE}
        if cut:
            flags.add(TRUNCATED)
        return Record(first.offset, g.last.end, resume, message, first.stream, first.timestamp, tuple(sorted(flags)))
