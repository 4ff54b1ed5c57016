"""Lumberjack v2 (Beats protocol) frames, sans-IO: bytes in, frames out.

Every frame starts with the version byte ``'2'`` and a type byte; integers are big-endian uint32.

* ``2W <size>``                 window: the writer will send `size` data frames before awaiting the ack
* ``2J <seq> <len> <json>``     one JSON-encoded event; seq restarts at 1 in every window
* ``2C <len> <zlib>``           a zlib stream that holds whole frames (W and J)
* ``2A <seq>``                  ack, reader -> writer: the highest seq done; also a keepalive

A reader that only needs the payloads can ask for consecutive ``J`` frames as one `DataRun` (their
payloads and the last seq, the one its ack carries) instead of a `DataFrame` each: one Python object
per run rather than per event.

The decoder is incremental (any split point) and bounded: a frame's declared length is checked
against the limit as soon as its header is complete, so a peer cannot make it buffer more than
`max_frame_bytes` (plus a header) nor inflate a `C` frame beyond `max_decompressed_bytes`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple, cast

from isal import isal_zlib

VERSION = 0x32  # '2'
# python-isal's stubs declare its error class as an instance
_INFLATE_ERROR = cast(type[Exception], isal_zlib.error)
_V1 = 0x31  # '1'
_W = 0x57
_J = 0x4A
_C = 0x43
_A = 0x41
_D = 0x44  # v1-style key/value data frame; Beats v2 writers never send it

_U32 = struct.Struct(">I")
_U32X2 = struct.Struct(">II")
_WINDOW = struct.Struct(">2sI")
_DATA_HEADER = struct.Struct(">2sII")
_ACK = struct.Struct(">2sI")
_HEADER_LEN = {_W: 6, _J: 10, _C: 6, _A: 6}
MAX_U32 = 0xFFFFFFFF
# uncompressed bytes handed to the deflater at a time (see WindowWriter.add)
_DEFLATE_SLICE = 64 * 1024


class ProtocolError(Exception):
    """The peer sent something this protocol does not allow; the message says what.

    `reason` is a short stable code for metrics and logs.
    """

    def __init__(self, message: str, reason: str = "invalid_frame") -> None:
        super().__init__(message)
        self.reason = reason


class WindowFrame(NamedTuple):
    size: int


class DataFrame(NamedTuple):
    seq: int
    payload: bytes


class DataRun(NamedTuple):
    """Consecutive data frames, in order (`Decoder(runs=True)`): never empty."""

    payloads: list[bytes]
    last_seq: int  # the seq of the last one
    nbytes: int  # the payloads' total length


class AckFrame(NamedTuple):
    seq: int


Frame = WindowFrame | DataFrame | DataRun | AckFrame


def _type_name(t: int) -> str:
    return repr(chr(t)) if 0x20 <= t < 0x7F else f"0x{t:02x}"


def _bad_version(v: int) -> ProtocolError:
    if v == _V1:
        return ProtocolError(
            "unsupported protocol version '1' (Lumberjack v1); configure the sender for Beats protocol v2",
            "unsupported_version",
        )
    hint = "not a Lumberjack v2 stream"
    if v == 0x16:  # a TLS record header: the handshake of a client configured for TLS
        hint = "looks like a TLS handshake: enable tls on this listener or disable it on the sender"
    return ProtocolError(f"invalid protocol version byte {_type_name(v)} (expected '2'); {hint}", "bad_version")


class Decoder:
    """Turns a byte stream into frames. Compressed frames are expanded into their inner frames.

    It accepts the frames a writer sends (W, J and C; a client reading acks uses AckDecoder). With
    `runs`, consecutive J frames come out as one `DataRun` (at most one per run per `feed`) instead of
    a `DataFrame` each.
    """

    def __init__(
        self,
        max_frame_bytes: int = 16 * 1024 * 1024,
        max_decompressed_bytes: int = 64 * 1024 * 1024,
        max_window_size: int = 16384,
        *,
        runs: bool = False,
    ) -> None:
        self.runs = runs
        self.max_frame_bytes = max_frame_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.max_window_size = max_window_size
        # Chunks of the incomplete frame at the end of the stream; joined only once `_need` bytes are
        # here, so a large frame arriving in many small reads is copied once, not once per read.
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 2
        self._failed: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held; 0 means the stream is at a frame boundary."""
        return self._have

    def feed(self, data: bytes) -> list[Frame]:
        """Consume `data`; return the frames it completes. Raises ProtocolError on invalid input.

        After an error the decoder stays failed: the stream cannot be resynchronised.
        """
        if self._failed is not None:
            raise self._failed
        if not data:
            return []
        self._chunks.append(bytes(data))
        self._have += len(data)
        if self._have < self._need:
            return []
        buf = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        frames: list[Frame] = []
        try:
            pos, need = self._parse(buf, frames, nested=False)
        except ProtocolError as exc:
            self._failed = exc
            self._chunks = []
            self._have = 0
            raise
        rest = buf[pos:] if pos else buf
        self._chunks = [rest] if rest else []
        self._have = len(rest)
        self._need = need
        return frames

    def _parse(self, buf: bytes, out: list[Frame], nested: bool) -> tuple[int, int]:
        """Decode whole frames from `buf` into `out`; return (bytes consumed, bytes the next frame needs)."""
        pos = 0
        end = len(buf)
        append = out.append
        max_frame = self.max_frame_bytes
        unpack_u32 = _U32.unpack_from
        unpack_u32x2 = _U32X2.unpack_from
        # tuple.__new__ builds the NamedTuple without its generated Python-level __new__: one per event
        new_tuple = tuple.__new__
        runs = self.runs
        while True:
            left = end - pos
            if left < 2:
                return pos, 2
            if buf[pos] != VERSION:
                raise _bad_version(buf[pos])
            ftype = buf[pos + 1]
            if ftype == _J:
                if runs:
                    stop, run = self._data_run(buf, pos, end)
                    if stop != pos:
                        append(run)
                        pos = stop
                        continue
                    # not one complete frame within the limit: the checks below raise or wait
                if left < 10:
                    return pos, 10
                seq, length = unpack_u32x2(buf, pos + 2)
                if length > max_frame:
                    raise ProtocolError(
                        f"data frame of {length} bytes exceeds max_frame_bytes {max_frame}",
                        "frame_too_large",
                    )
                stop = pos + 10 + length
                if stop > end:
                    return pos, 10 + length
                append(new_tuple(DataFrame, (seq, buf[pos + 10 : stop])))
                pos = stop
            elif ftype == _W:
                if left < 6:
                    return pos, 6
                (size,) = unpack_u32(buf, pos + 2)
                if size > self.max_window_size:
                    raise ProtocolError(
                        f"window of {size} events exceeds max_window_size {self.max_window_size}",
                        "window_too_large",
                    )
                append(WindowFrame(size))
                pos += 6
            elif ftype == _C:
                if nested:
                    raise ProtocolError("compressed frame nested inside a compressed frame", "nested_compression")
                if left < 6:
                    return pos, 6
                (length,) = unpack_u32(buf, pos + 2)
                if length > max_frame:
                    raise ProtocolError(
                        f"compressed frame of {length} bytes exceeds max_frame_bytes {max_frame}",
                        "frame_too_large",
                    )
                stop = pos + 6 + length
                if stop > end:
                    return pos, 6 + length
                self._expand(buf[pos + 6 : stop], out)
                pos = stop
            elif ftype == _A:
                raise ProtocolError("unexpected ack frame from a writer", "unexpected_frame")
            elif ftype == _D:
                raise ProtocolError(
                    "unsupported frame type 'D' (key/value data); only JSON data frames 'J' are accepted",
                    "unknown_frame",
                )
            else:
                raise ProtocolError(f"unknown frame type {_type_name(ftype)}", "unknown_frame")

    def _data_run(self, buf: bytes, pos: int, end: int) -> tuple[int, DataRun]:
        """The complete J frames within the limit from `pos` on, as one run; and where they end."""
        payloads: list[bytes] = []
        append = payloads.append
        unpack_u32x2 = _U32X2.unpack_from
        max_frame = self.max_frame_bytes
        start = pos
        last_seq = 0
        while end - pos >= 10 and buf[pos + 1] == _J and buf[pos] == VERSION:
            seq, length = unpack_u32x2(buf, pos + 2)
            stop = pos + 10 + length
            if length > max_frame or stop > end:
                break
            append(buf[pos + 10 : stop])
            last_seq = seq
            pos = stop
        return pos, DataRun(payloads, last_seq, pos - start - _DATA_HEADER.size * len(payloads))

    def _expand(self, compressed: bytes, out: list[Frame]) -> None:
        limit = self.max_decompressed_bytes
        inflater = isal_zlib.decompressobj()  # ISA-L inflates any zlib stream, about twice as fast
        try:
            # max_length stops inflation one byte past the limit: a zip bomb costs at most `limit` bytes.
            inner = inflater.decompress(compressed, limit + 1)
        except _INFLATE_ERROR as exc:
            raise ProtocolError(f"compressed frame is not a valid zlib stream: {exc}", "bad_compression") from None
        if len(inner) > limit:
            raise ProtocolError(
                f"compressed frame inflates beyond max_decompressed_bytes {limit}", "decompressed_too_large"
            )
        if not inflater.eof:
            raise ProtocolError("compressed frame holds a truncated zlib stream", "bad_compression")
        consumed, _ = self._parse(inner, out, nested=True)
        if consumed != len(inner):
            raise ProtocolError(
                f"compressed frame ends inside a frame ({len(inner) - consumed} stray bytes)",
                "truncated_frame",
            )


class AckDecoder:
    """Client side: the reader's ack frames -> acked sequence numbers (keepalives included)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[int]:
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        seqs: list[int] = []
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            if buf[pos] != VERSION:
                raise _bad_version(buf[pos])
            if buf[pos + 1] != _A:
                raise ProtocolError(
                    f"expected an ack frame, got frame type {_type_name(buf[pos + 1])}", "unexpected_frame"
                )
            if end - pos < 6:
                break
            seqs.append(_U32.unpack_from(buf, pos + 2)[0])
            pos += 6
        self._buf = buf[pos:]
        return seqs


def isal_level(compression_level: int) -> int:
    """The ISA-L level for a zlib `compression_level` (1-9).

    Windows are deflated with ISA-L (python-isal): a plain zlib stream any inflater reads, at several
    times zlib's speed for about zlib level 3's size on log events (`python -m benchmarks.compression`).
    Its levels are 0-3; higher zlib levels still mean smaller and slower: 1-3 -> 1, 4-6 -> 2, 7-9 -> 3.
    """
    return 1 if compression_level <= 3 else 2 if compression_level <= 6 else 3


class WindowWriter:
    """One window built as its events arrive: each `add` turns payloads into ``2J`` frames (seq continuing
    from the previous call) and, when compressing, feeds them to the deflater at once. A writer that is
    filled batch by batch therefore never holds the window both as events and as its encoding, nor its
    whole uncompressed body when it compresses.

    `finish` gives the window as chunks to write one after the other (`writelines`). Uncompressed, the
    chunks are the frame headers and the payloads themselves: the window is never copied into one
    buffer, so it is never held twice while the copy is made (3-4 MiB less peak RSS with the default
    windows in flight, `benchmarks` case a, compression off)."""

    __slots__ = ("_deflater", "_parts", "count")

    def __init__(self, compression_level: int = 0) -> None:
        self._deflater = isal_zlib.compressobj(isal_level(compression_level)) if compression_level > 0 else None
        self._parts: list[bytes] = []
        self.count = 0

    def add(self, payloads: Sequence[bytes]) -> None:
        n = len(payloads)
        if self.count + n > MAX_U32:
            raise ValueError("too many events for one window")
        seq = self.count
        # header, payload, header, payload...: built by C loops, not one Python step per event
        frames = [b""] * (2 * n)
        frames[0::2] = map(_DATA_HEADER.pack, repeat(b"2J", n), range(seq + 1, seq + n + 1), map(len, payloads))
        frames[1::2] = payloads
        self.count = seq + n
        if self._deflater is None:
            self._parts += frames
            return
        # fed in slices of about _DEFLATE_SLICE bytes: a buffer that size is reused from slice to slice,
        # where the whole batch at once would be a fresh multi-megabyte allocation every time
        step = 2 * max(1, _DEFLATE_SLICE * n // (sum(map(len, payloads)) + _DATA_HEADER.size * n + 1))
        compress, join, parts = self._deflater.compress, b"".join, self._parts
        for start in range(0, 2 * n, step):
            chunk = compress(join(frames[start : start + step]))
            if chunk:
                parts.append(chunk)

    def finish(self) -> list[bytes]:
        """The window's chunks: ``2W`` then the J frames, inside one ``2C`` frame when compressing."""
        window = _WINDOW.pack(b"2W", self.count)
        if self._deflater is None:
            return [window, *self._parts]
        self._parts.append(self._deflater.flush())
        compressed = sum(map(len, self._parts))
        return [window, _WINDOW.pack(b"2C", compressed), *self._parts]


def encode_window(payloads: Sequence[bytes], compression_level: int = 0) -> bytes:
    """One window: ``2W`` then one ``2J`` per payload (seq 1..n), the J frames inside one ``2C`` frame
    when `compression_level` > 0 (the layout Filebeat and go-lumber use)."""
    writer = WindowWriter(compression_level)
    writer.add(payloads)
    return b"".join(writer.finish())


def encode_ack(seq: int) -> bytes:
    return _ACK.pack(b"2A", seq)
