"""Sans-IO decoders from raw lines to log records: CRI, plain text, and the container-log decoder that
picks Docker json-file (docker_json.py) or CRI from a file's first line. What a record is and the
merging of split lines they share live in records.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shipper.docker_json import DockerDecoder
from shipper.docker_runs import DockerRun
from shipper.lines import Block, Line
from shipper.records import (
    INVALID_UTF8,
    MALFORMED_CRI,
    TRUNCATED,
    Decoder,
    MergingDecoder,
    Record,
    clip,
    decode_utf8,
    rfc3339_to_ms,
)

# Creating a NamedTuple through tuple.__new__ skips its Python-level __new__: this is the hot path.
_new = tuple.__new__


class CRIDecoder(MergingDecoder):
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
