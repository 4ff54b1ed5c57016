"""Sans-IO decoder of Docker json-file lines: `{"log":"text\\n","stream":"stdout","time":"...Z"}`.

The general path decodes each line's JSON; with `encoded`, lines already in the driver's exact layout
keep their message JSON-encoded, and whole reads of such lines become `DockerRun`s (docker_runs.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson

from shipper.docker_runs import (
    HEAD,
    HEAD_AT,
    LINE_OVERHEAD,
    MS_TIME_AT,
    SPECIAL,
    TAIL_AT,
    TAILS,
    TEXT_AT,
    ZEROS,
    DockerRun,
    split_runs,
)
from shipper.lines import Block, Line
from shipper.records import (
    INVALID_UTF8,
    MALFORMED_JSON,
    TRUNCATED,
    MergingDecoder,
    Record,
    clip,
    decode_utf8,
    rfc3339_to_ms,
)

# Creating a NamedTuple through tuple.__new__ skips its Python-level __new__: this is the hot path.
_new = tuple.__new__

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


class DockerDecoder(MergingDecoder):
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
        head, tails, zeros, special = HEAD, TAILS, ZEROS, SPECIAL
        head_at, tail_at, text_at, time_at = HEAD_AT, TAIL_AT, TEXT_AT, MS_TIME_AT
        last_time, ts = b"", ""
        end = self._last_end
        for line in lines:
            offset, end, data, truncated = line
            if not pending and not truncated and data[head_at] == head:
                stream = tails.get(data[tail_at].translate(zeros))
                if stream is not None:
                    body = data[text_at]
                    n = len(body)
                    if n < quarter and (
                        (body.isascii() and len(body.translate(None, special)) == n) or _is_canonical(body)
                    ):
                        time = data[time_at]
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
