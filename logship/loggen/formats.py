"""Container runtime log formats, encoded the way the runtimes write them and decoded back.

Pure functions on bytes, no I/O. Docker's json-file driver and containerd's CRI format both split a
line longer than 16 KiB into several records: Docker as several JSON objects whose `log` lacks the
trailing newline except the last; CRI as `P` (partial) records followed by one `F` (full) record.
The decoders exist so tests can prove the generated files parse back to the exact messages.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

DOCKER = "docker"
CRI = "cri"
FORMATS = (DOCKER, CRI)
RUNTIME_SPLIT_BYTES = 16 * 1024  # dockerd and containerd both cut lines at 16 KiB


@functools.lru_cache(maxsize=64)
def _utc_seconds(seconds: int, fmt: str) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime(fmt)  # cached: many lines share a second


def rfc3339_nano(ts_ns: int) -> str:
    """`2026-11-26T21:34:15.123456789Z`, the timestamp both runtimes write."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return f"{_utc_seconds(seconds, '%Y-%m-%dT%H:%M:%S')}.{nanos:09d}Z"


def app_timestamp(ts_ns: int) -> str:
    """`2026-11-26 21:34:15.123`, a typical Java logback pattern (UTC, milliseconds)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return f"{_utc_seconds(seconds, '%Y-%m-%d %H:%M:%S')}.{nanos // 1_000_000:03d}"


def utc_date(ts_ns: int, fmt: str = "%Y.%m.%d") -> str:
    """The UTC date of a timestamp, e.g. the date part of a daily index name."""
    return _utc_seconds(ts_ns // 1_000_000_000, fmt)


def _chunks(data: bytes, size: int) -> list[bytes]:
    """Cut UTF-8 `data` into pieces of at most `size` bytes, never inside a character."""
    if not data:
        return [b""]
    out: list[bytes] = []
    start = 0
    while start < len(data):
        end = min(start + size, len(data))
        while end < len(data) and end > start + 1 and (data[end] & 0xC0) == 0x80:
            end -= 1  # data[end] is a continuation byte: cut before the character it belongs to
        out.append(data[start:end])
        start = end
    return out


def encode_docker(message: str, stream: str, ts_ns: int, split_bytes: int = RUNTIME_SPLIT_BYTES) -> bytes:
    """One logical line as Docker json-file records (several if longer than `split_bytes`)."""
    raw = message.encode("utf-8")
    time = rfc3339_nano(ts_ns)
    parts = _chunks(raw, split_bytes)
    out = bytearray()
    for i, part in enumerate(parts):
        text = part.decode("utf-8")
        if i == len(parts) - 1:
            text += "\n"
        out += orjson.dumps({"log": text, "stream": stream, "time": time})
        out += b"\n"
    return bytes(out)


def encode_cri(message: str, stream: str, ts_ns: int, split_bytes: int = RUNTIME_SPLIT_BYTES) -> bytes:
    """One logical line as CRI records: `<time> <stream> P <chunk>` ... `<time> <stream> F <last>`."""
    raw = message.encode("utf-8")
    head = f"{rfc3339_nano(ts_ns)} {stream} ".encode("ascii")
    parts = _chunks(raw, split_bytes)
    out = bytearray()
    for i, part in enumerate(parts):
        tag = b"F " if i == len(parts) - 1 else b"P "
        out += head + tag + part + b"\n"
    return bytes(out)


def encode(fmt: str, message: str, stream: str, ts_ns: int, split_bytes: int = RUNTIME_SPLIT_BYTES) -> bytes:
    if fmt == DOCKER:
        return encode_docker(message, stream, ts_ns, split_bytes)
    if fmt == CRI:
        return encode_cri(message, stream, ts_ns, split_bytes)
    raise ValueError(f"unknown container log format {fmt!r}; use one of {', '.join(FORMATS)}")


@dataclass(frozen=True)
class Record:
    """One physical record of a container log file."""

    time: str
    stream: str
    text: str
    final: bool  # False: a partial record, the line continues in the next record


_CRI_LINE = re.compile(rb"^(\S+) (stdout|stderr) ([PF]) ?(.*)$", re.DOTALL)


def decode_docker_record(line: bytes) -> Record:
    obj = orjson.loads(line)
    text = obj["log"]
    final = text.endswith("\n")
    return Record(obj["time"], obj["stream"], text[:-1] if final else text, final)


def decode_cri_record(line: bytes) -> Record:
    match = _CRI_LINE.match(line.rstrip(b"\n"))
    if match is None:
        raise ValueError(f"not a CRI log line: {line[:80]!r}")
    time, stream, tag, text = match.groups()
    return Record(time.decode(), stream.decode(), text.decode("utf-8"), tag == b"F")


def detect_format(first_line: bytes) -> str:
    return DOCKER if first_line.lstrip().startswith(b"{") else CRI


@dataclass(frozen=True)
class LogicalLine:
    time: str
    stream: str
    message: str
    records: int  # physical records it was written as (1 unless split)


def decode_lines(data: bytes, fmt: str | None = None) -> list[LogicalLine]:
    """Decode a whole container log file back into logical lines, merging splits and partials.

    Partials are merged per stream, as the runtimes interleave stdout and stderr records.
    """
    lines = [ln for ln in data.split(b"\n") if ln]
    if not lines:
        return []
    fmt = fmt or detect_format(lines[0])
    decode = decode_docker_record if fmt == DOCKER else decode_cri_record
    pending: dict[str, tuple[str, list[str]]] = {}
    out: list[LogicalLine] = []
    for raw in lines:
        rec = decode(raw)
        time, parts = pending.pop(rec.stream, (rec.time, []))
        parts.append(rec.text)
        if rec.final:
            out.append(LogicalLine(time, rec.stream, "".join(parts), len(parts)))
        else:
            pending[rec.stream] = (time, parts)
    return out
