"""Sans-IO decoders from raw lines to log records: Docker json-file, CRI, and plain text.

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

from shipper.docker_runs import LINE_OVERHEAD, DockerRun, split_runs
from shipper.lines import Block, Line

# Creating a NamedTuple through tuple.__new__ skips its Python-level __new__: this is the hot path.
_new = tuple.__new__

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


class _Merging:
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


# A whole Docker json-file line as the json-file driver writes it ends with this tail (digits shown as 0):
# `_ZEROS` maps a line's last 62 bytes onto one of these to check them in one step.
_TIME_SHAPE = b"0000-00-00T00:00:00.000000000Z"
_TAILS = {b'\\n","stream":"' + s + b'","time":"' + _TIME_SHAPE + b'"}': s.decode() for s in (b"stdout", b"stderr")}
assert {len(tail) for tail in _TAILS} == {62}
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_HEAD = b'{"log":"'
# Bytes that never appear raw in a JSON string: a body without them is already its own encoding.
_SPECIAL = bytes(range(0x20)) + b'"\\'
# A string literal's body spelled as orjson.dumps spells it: the escapes it must have, and no others.
# (Possessive quantifiers: a failing match must not retry every way of cutting a long run of plain bytes.)
_CANONICAL = re.compile(rb'(?:[^\x00-\x1f"\\]++|\\["\\bfnrt]|\\u00(?:0[0-7bef]|1[0-9a-f]))*+').fullmatch


def _is_canonical(body: bytes) -> bool:
    """Is `body` a JSON string literal's body, valid UTF-8, exactly as orjson.dumps writes its text?"""
    if _CANONICAL(body) is None or body.endswith(b"\\r"):  # `\r\n` endings are cut differently
        return False
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class DockerDecoder(_Merging):
    """Docker json-file: `{"log":"text\\n","stream":"stdout","time":"...Z"}` per line.

    With `encoded`, a whole, short line in the json-file driver's exact layout whose `log` is spelled as
    orjson spells strings gets a record with the message still JSON-encoded (bytes, see `Record`): the
    bytes between `{"log":"` and the final `\\n` escape. The event builder splices them in as they
    are, so such a line is never decoded to text and encoded again. Every other line takes the general
    path, which makes the same event.
    """

    runtime: str | None = "docker"

    def __init__(self, max_event_bytes: int, encoded: bool = False) -> None:
        super().__init__(max_event_bytes)
        self._encoded = encoded

    def decode(self, lines: Iterable[Line]) -> list[Record]:
        if self._encoded:
            return self._decode_encoded(lines)
        out: list[Record] = []
        append = out.append
        loads = orjson.loads
        quarter = self._max // 4  # a str of this many characters has at most max_event_bytes bytes
        pending = self._pending  # the same dict throughout: pieces are added to and popped from it
        end = self._last_end
        for line in lines:
            offset, end, data, truncated = line
            try:
                obj = loads(data)
            except orjson.JSONDecodeError:
                self._general(line, None, out)
                continue
            # hot path: a whole, valid, short line while no split line waits
            if type(obj) is dict and not truncated and not pending:
                text = obj.get("log")
                if type(text) is str and text[-1:] == "\n" and text[-2:] != "\r\n" and len(text) <= quarter:
                    t = obj.get("time")
                    if type(t) is str and len(t) == 30 and t[29] == "Z" and t[19] == "." and t[10] == "T":
                        ts: str | None = t[:23] + "Z"
                    else:
                        ts = rfc3339_to_ms(t) if type(t) is str else None
                    stream = obj.get("stream")
                    if type(stream) is not str:
                        stream = "stdout"
                    append(_new(Record, (offset, end, end, text[:-1], stream, ts, ())))
                    continue
            self._general(line, obj, out)
        self._last_end = end
        return out

    def _decode_encoded(self, lines: Iterable[Line]) -> list[Record]:
        out: list[Record] = []
        append = out.append
        loads = orjson.loads
        # the body's length bounds the message's characters (each takes at least one byte of it)
        quarter = self._max // 4
        pending = self._pending
        head, tails, zeros, special = _HEAD, _TAILS, _ZEROS, _SPECIAL
        last_time, ts = b"", ""
        end = self._last_end
        for line in lines:
            offset, end, data, truncated = line
            if not pending and not truncated and data[:8] == head:
                stream = tails.get(data[-62:].translate(zeros))
                if stream is not None:
                    body = data[8:-62]
                    n = len(body)
                    if n < quarter and (
                        (body.isascii() and len(body.translate(None, special)) == n) or _is_canonical(body)
                    ):
                        time = data[-32:-9]  # the time's first 23 bytes: ms precision
                        if time != last_time:  # one str for a run of lines of the same ms
                            last_time = time
                            ts = time.decode("ascii") + "Z"
                        append(_new(Record, (offset, end, end, body, stream, ts, ())))
                        continue
            try:
                obj = loads(data)
            except orjson.JSONDecodeError:
                obj = None
            self._general(line, obj, out)
        self._last_end = end
        return out

    def decode_block(self, first: list[Line], block: Block) -> list[list[Record] | DockerRun]:
        """`decode` of `first` then of the block's lines, records of consecutive lines in one list; with
        `encoded`, runs of plain lines come as `DockerRun`s in their place (see shipper/docker_runs.py)."""
        if not self._encoded:
            return [self.decode(first + block.lines())]
        out: list[list[Record] | DockerRun] = [self._decode_encoded(first)] if first else []
        data = block.data
        # texts shorter than this need no clipping, and their lines are within the line limit
        max_text = min(self._max // 4, block.limit - LINE_OVERHEAD + 2)
        for item in split_runs(data, 0, len(data), block.offset, max_text):
            if isinstance(item, DockerRun):
                # while a split line waits for its last piece, line by line: that piece may be among them
                first_line, offsets = 0, item.offsets
                while self._pending and first_line < len(item.texts):
                    lines = block.lines(offsets[first_line] - block.offset, offsets[first_line + 1] - block.offset)
                    _extend(out, self._decode_encoded(lines))
                    first_line += 1
                if first_line < len(item.texts):
                    out.append(item.without(first_line))
            else:
                _extend(out, self._decode_encoded(block.lines(*item)))
        if data:
            self._last_end = block.offset + len(data)
        return out

    def _general(self, line: Line, obj: object, out: list[Record]) -> None:
        if obj is None:
            obj = self._retry(line, out)
            if obj is None:
                return
            flags: tuple[str, ...] = (INVALID_UTF8, TRUNCATED) if line.truncated else (INVALID_UTF8,)
        else:
            flags = (TRUNCATED,) if line.truncated else ()
        text = obj.get("log") if type(obj) is dict else None
        if type(text) is not str:
            self._raw(line, MALFORMED_JSON, out)
            return
        assert isinstance(obj, dict)
        stream = obj.get("stream")
        if type(stream) is not str:
            stream = "stdout"
        t = obj.get("time")
        ts = rfc3339_to_ms(t) if type(t) is str else None
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
            self.last(line, stream, text, ts, flags, out)
        else:
            self.piece(line, stream, text, ts, flags)

    def _retry(self, line: Line, out: list[Record]) -> dict[str, object] | None:
        text, replaced = decode_utf8(line.data)
        if replaced:
            try:
                obj = orjson.loads(text)
                if type(obj) is dict:
                    return obj
            except orjson.JSONDecodeError:
                pass
        self._raw(line, MALFORMED_JSON, out)
        return None

    def _raw(self, line: Line, flag: str, out: list[Record]) -> None:
        text, replaced = decode_utf8(line.data)
        # the line limit leaves room for JSON escaping, so a raw line can still exceed max_event_bytes
        text, cut = clip(text, self._max)
        flags = [flag]
        if replaced:
            flags.append(INVALID_UTF8)
        if line.truncated or cut:
            flags.append(TRUNCATED)
        out.append(Record(line.offset, line.end, self._resume(line.end), text, None, None, tuple(sorted(flags))))


def _extend(out: list[list[Record] | DockerRun], records: list[Record]) -> None:
    """Add `records` to the list of records `out` ends with, or start one."""
    last = out[-1] if out else None
    if type(last) is list:
        last += records
    else:
        out.append(records)


class CRIDecoder(_Merging):
    """CRI (containerd, CRI-O): `<RFC3339Nano time> <stdout|stderr> <P|F>[:more tags] <message>`."""

    runtime: str | None = "cri"

    def decode(self, lines: Iterable[Line]) -> list[Record]:
        out: list[Record] = []
        append = out.append
        quarter = self._max // 4  # a str of this many characters has at most max_event_bytes bytes
        pending = self._pending  # the same dict throughout: pieces are added to and popped from it
        last_time, ts = b"", ""
        end = self._last_end
        for line in lines:
            offset, end, data, truncated = line
            fields = data.split(b" ", 3)
            # hot path: a whole (F), short, valid UTF-8 line with the runtimes' UTC nanosecond time,
            # while no split line waits; the same record the general path makes, with fewer calls
            if not pending and not truncated and len(fields) == 4:
                t, s, tag, msg = fields
                if tag == b"F" and (s == b"stdout" or s == b"stderr") and len(t) == 30 and t[29] == 90 and t[19] == 46:
                    try:
                        text = msg.decode("utf-8")
                    except UnicodeDecodeError:
                        text = None
                    if text is not None and len(text) <= quarter:
                        time = t[:23]
                        if time != last_time:  # one str for a run of lines of the same ms
                            last_time = time
                            ts = time.decode("ascii", "replace") + "Z"
                        append(_new(Record, (offset, end, end, text, "stdout" if s == b"stdout" else "stderr", ts, ())))
                        continue
            self._general(line, fields, out)
        self._last_end = end
        return out

    def _general(self, line: Line, fields: list[bytes], out: list[Record]) -> None:
        if len(fields) < 3 or fields[1] not in (b"stdout", b"stderr") or fields[2][:1] not in (b"P", b"F"):
            self._raw(line, out)
            return
        ts = rfc3339_to_ms(fields[0].decode("ascii", "replace"))
        if ts is None:
            self._raw(line, out)
            return
        text, replaced = decode_utf8(fields[3]) if len(fields) == 4 else ("", False)
        flags: tuple[str, ...] = ()
        if replaced or line.truncated:
            flags = tuple(f for f, on in ((INVALID_UTF8, replaced), (TRUNCATED, line.truncated)) if on)
        stream = "stdout" if fields[1] == b"stdout" else "stderr"
        if fields[2][:1] == b"P":
            self.piece(line, stream, text, ts, flags)
        else:
            self.last(line, stream, text, ts, flags, out)

    def _raw(self, line: Line, out: list[Record]) -> None:
        text, replaced = decode_utf8(line.data)
        text, cut = clip(text, self._max)  # see DockerDecoder._raw
        flags = [MALFORMED_CRI]
        if replaced:
            flags.append(INVALID_UTF8)
        if line.truncated or cut:
            flags.append(TRUNCATED)
        out.append(Record(line.offset, line.end, self._resume(line.end), text, None, None, tuple(sorted(flags))))


class PlainDecoder:
    """App logs: one record per line, `\\r\\n` or `\\n` endings."""

    runtime: str | None = None

    def __init__(self, max_event_bytes: int) -> None:
        self._max = max_event_bytes

    def decode(self, lines: Iterable[Line]) -> list[Record]:
        out: list[Record] = []
        max_bytes = self._max
        for line in lines:
            data = line.data
            if data.endswith(b"\r"):
                data = data[:-1]
            try:
                text = data.decode("utf-8")
                flags: tuple[str, ...] = (TRUNCATED,) if line.truncated else ()
            except UnicodeDecodeError:
                text = data.decode("utf-8", "replace")
                flags = (INVALID_UTF8, TRUNCATED) if line.truncated else (INVALID_UTF8,)
            if len(text) * 4 > max_bytes:  # container files in no known format get a longer line limit
                text, cut = clip(text, max_bytes)
                if cut and TRUNCATED not in flags:
                    flags = (*flags, TRUNCATED)
            out.append(Record(line.offset, line.end, line.end, text, None, None, flags))
        return out

    def flush(self) -> list[Record]:
        return []

    def pending_start(self) -> int | None:
        return None


_CRI_START = re.compile(rb"^\d{4}-\d{2}-\d{2}T\S+ (?:stdout|stderr) [PF]")


def detect(first_line: bytes) -> str:
    """Which container log format a file is in, from its first line: docker, cri, or plain."""
    if first_line.lstrip()[:1] == b"{":
        return "docker"
    if _CRI_START.match(first_line):
        return "cri"
    return "plain"


class AutoDecoder:
    """Container logs: picks Docker or CRI from the first line of the file, then delegates.

    `encoded`: Docker records may carry their message JSON-encoded (see DockerDecoder)."""

    def __init__(self, max_event_bytes: int, encoded: bool = False) -> None:
        self._max = max_event_bytes
        self._encoded = encoded  # see DockerDecoder
        self._inner: Decoder | None = None

    @property
    def runtime(self) -> str | None:
        return self._inner.runtime if self._inner is not None else None

    def decode(self, lines: Iterable[Line]) -> list[Record]:
        if self._inner is None:
            lines = list(lines)
            if not lines:
                return []
            self._inner = self._make(detect(lines[0].data))
        return self._inner.decode(lines)

    def _make(self, kind: str) -> Decoder:
        if kind == "docker":
            return DockerDecoder(self._max, self._encoded)
        return CRIDecoder(self._max) if kind == "cri" else PlainDecoder(self._max)

    @property
    def runs(self) -> bool:
        """May `decode_block` find runs of Docker lines: the format is not known yet, or is Docker."""
        return self._inner is None or isinstance(self._inner, DockerDecoder)

    def decode_block(self, first: list[Line], block: Block) -> list[list[Record] | DockerRun]:
        """`decode` of `first` then of the block's lines; Docker lines may come as runs (DockerDecoder)."""
        if self._inner is None:
            if not first and not block.data:
                return []
            self._inner = self._make(detect(first[0].data if first else block.data[: block.data.find(b"\n")]))
        if isinstance(self._inner, DockerDecoder):
            return self._inner.decode_block(first, block)
        return [self._inner.decode(first + block.lines())]

    def flush(self) -> list[Record]:
        return self._inner.flush() if self._inner is not None else []

    def pending_start(self) -> int | None:
        return self._inner.pending_start() if self._inner is not None else None
