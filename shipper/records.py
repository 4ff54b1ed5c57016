"""What every decoder makes (`Record`, its flags, the `Decoder` protocol) and what they share: timestamp
and text helpers, and the per-stream merging of split lines (`MergingDecoder`).

A decoder turns `Line`s into `Record`s, merging the pieces of a long line that the runtime split
(Docker: a `log` without a trailing newline, every 16 KiB; CRI: the `P` tag), separately per stream
since stdout and stderr pieces interleave in one file. Bad input is never fatal: invalid UTF-8 is
replaced, malformed lines are shipped raw, and the record carries a flag saying so.

Each record carries `resume`: the offset from which re-reading the file reproduces every record after
this one. It is the record's end, or earlier while a piece of another record is still waiting for its
continuation, so a checkpoint taken after this record never skips that waiting piece.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import orjson

from shipper.lines import Line

# Flags that may appear in log.flags
INVALID_UTF8 = "invalid_utf8"
TRUNCATED = "truncated"
MALFORMED_JSON = "malformed_json"
MALFORMED_CRI = "malformed_cri"
MULTILINE = "multiline"
PARTIAL = "partial"  # a split line whose last piece never came (file rotated away mid-line)


class Record(NamedTuple):
    offset: int  # offset of the first byte of the record's first line
    end: int  # offset just past the record's last line
    resume: int  # see module docstring
    # The text, or (bytes) the text already JSON-encoded exactly as orjson.dumps encodes it, without the
    # quotes: only a decoder asked for `encoded` messages makes those (`message_text` gives the text).
    message: str | bytes
    stream: str | None  # "stdout" / "stderr" for container logs
    timestamp: str | None  # ISO-8601 UTC with ms and Z, when the source gave one
    flags: tuple[str, ...]


class Decoder(Protocol):
    @property
    def runtime(self) -> str | None:
        """ "docker" / "cri" / None, for container.runtime."""

    def decode(self, lines: Iterable[Line]) -> list[Record]: ...

    def flush(self) -> list[Record]: ...

    def pending_start(self) -> int | None: ...


def rfc3339_to_ms(value: str) -> str | None:
    """`2026-01-01T12:00:00.123456789Z` -> `2026-01-01T12:00:00.123Z`; any offset converted to UTC."""
    n = len(value)
    # fast path: the runtimes write UTC with a 'Z' and nanoseconds
    if n >= 24 and value[-1] == "Z" and value[19] == "." and value[10] == "T":
        return value[:23] + "Z" if n >= 25 else value[:-1].ljust(23, "0") + "Z"
    if n == 20 and value[-1] == "Z" and value[10] == "T":
        return value[:19] + ".000Z"
    return parse_timestamp(value, UTC)


_FRACTION = re.compile(r"[.,](\d+)")


def parse_timestamp(value: str, default_tz: object) -> str | None:
    """Parse an ISO-8601-ish timestamp (fraction of any length, `,` or `.`); None if it is not one."""
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    m = _FRACTION.search(text)
    if m:  # datetime accepts at most microseconds
        text = text[: m.start()] + "." + m.group(1)[:6].ljust(6, "0") + text[m.end() :]
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=default_tz)  # type: ignore[arg-type]
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def message_text(message: str | bytes) -> str:
    """The text of a record's message, whichever form the decoder gave it in (see `Record`)."""
    if isinstance(message, str):
        return message
    text: str = orjson.loads(b'"' + message + b'"')
    return text


def decode_utf8(data: bytes) -> tuple[str, bool]:
    """Text of `data`, with invalid sequences replaced; True when something was replaced."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


def clip(message: str, max_bytes: int) -> tuple[str, bool]:
    """Truncate `message` to at most `max_bytes` UTF-8 bytes (never splitting a character)."""
    if len(message) * 4 <= max_bytes:
        return message, False
    raw = message.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return message, False
    return raw[:max_bytes].decode("utf-8", "ignore"), True


class _Pieces:
    """The pieces of one split line, waiting for the last one."""

    __slots__ = ("flags", "offset", "parts", "size", "timestamp")

    def __init__(self, offset: int, timestamp: str | None) -> None:
        self.offset = offset
        self.timestamp = timestamp
        self.parts: list[str] = []
        self.size = 0
        self.flags: set[str] = set()

    def add(self, text: str, flags: Iterable[str], max_bytes: int) -> None:
        self.flags.update(flags)
        if self.size >= max_bytes:
            self.flags.add(TRUNCATED)
            return
        self.parts.append(text)
        self.size += len(text)


class MergingDecoder:
    """Per-stream merging of split lines shared by the Docker and CRI decoders."""

    def __init__(self, max_event_bytes: int) -> None:
        self._max = max_event_bytes
        self._pending: dict[str, _Pieces] = {}
        self._last_end = 0  # end of the last line decoded: where unfinished pieces end at a flush

    def pending_start(self) -> int | None:
        if not self._pending:
            return None
        return min(p.offset for p in self._pending.values())

    def _resume(self, end: int) -> int:
        if not self._pending:
            return end
        return min(end, *(p.offset for p in self._pending.values()))

    def piece(self, line: Line, stream: str, text: str, ts: str | None, flags: tuple[str, ...]) -> None:
        p = self._pending.get(stream)
        if p is None:
            p = self._pending[stream] = _Pieces(line.offset, ts)
        p.add(text, flags, self._max)

    def last(
        self, line: Line, stream: str, text: str, ts: str | None, flags: tuple[str, ...], out: list[Record]
    ) -> None:
        p = self._pending.pop(stream, None)
        if p is not None:
            p.add(text, flags, self._max)
            message, cut = clip("".join(p.parts), self._max)
            fl = p.flags | {TRUNCATED} if cut else p.flags
            out.append(
                Record(p.offset, line.end, self._resume(line.end), message, stream, p.timestamp, tuple(sorted(fl)))
            )
            return
        if len(text) * 4 > self._max:
            text, cut = clip(text, self._max)
            if cut and TRUNCATED not in flags:
                flags = (*flags, TRUNCATED)
        out.append(Record(line.offset, line.end, self._resume(line.end), text, stream, ts, flags))

    def flush(self) -> list[Record]:
        end = self._last_end
        out: list[Record] = []
        for stream, p in sorted(self._pending.items(), key=lambda kv: kv[1].offset):
            message, cut = clip("".join(p.parts), self._max)
            fl = p.flags | {PARTIAL} | ({TRUNCATED} if cut else set())
            out.append(Record(p.offset, end, end, message, stream, p.timestamp, tuple(sorted(fl))))
        self._pending.clear()
        return out
