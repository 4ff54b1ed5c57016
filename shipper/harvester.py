"""One generation of one log file: read it in large chunks, turn the bytes into encoded events.

The harvester holds the file descriptor, so it keeps reading a file that was renamed (kubelet and
logrotate rotation) or deleted, until the end; the file set (`tailer.py`) decides when it is done.
Reads use `pread` at our own offset, so a truncation (copytruncate) is seen as size < offset, or as
different first bytes. The bytes of a generation may move under it: to the copy a copytruncate left,
or to the `.gz` of a rotated file (`switch_source`); offsets, and so event ids, stay the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from shipper.docker_runs import DockerRun
from shipper.event import EventBuilder, TimestampExtractor, utc_now_ms
from shipper.formats import AutoDecoder, PlainDecoder
from shipper.identity import FINGERPRINT_BYTES, FileIdentity
from shipper.lines import LineSplitter
from shipper.multiline import MultilineJoiner
from shipper.records import Decoder, Record, message_text
from shipper.sources import ByteSource, PlainSource


@dataclass(frozen=True, slots=True)
class Source:
    """What a harvester needs to know about the input its file belongs to."""

    input_type: str  # containers | app
    tags: list[str]
    fields: dict[str, object]
    max_event_bytes: int
    multiline: tuple[str, int, float] | None  # start_pattern, max_lines, timeout
    timestamp: tuple[str, str] | None  # pattern, timezone
    host_name: str
    sidecar: bool


class Metadata(Protocol):
    """Extra fields of a file's events (Kubernetes metadata), asked again whenever `generation` changes."""

    @property
    def generation(self) -> int: ...

    def fields(self) -> tuple[dict[str, Any], dict[str, Any]]: ...


@dataclass(slots=True)
class Batch:
    """Events from one read: encoded events and, for each, the offset to resume from after it."""

    events: list[bytes]
    resumes: list[int]
    lines: int = 0
    nbytes: int = 0


class Harvester:
    def __init__(
        self, path: str, src: ByteSource | int, identity: FileIdentity, offset: int, source: Source, real: str = ""
    ) -> None:
        self.path = path
        self.src: ByteSource | None = PlainSource(src, real or path) if isinstance(src, int) else src
        self.identity = identity
        self.key = identity.key
        self.source = source
        self.read_offset = offset  # next byte to read
        self.detached = False  # the path no longer leads to this file (rotated away or deleted)
        self.detached_at = 0.0
        self.last_data = time.monotonic()  # when bytes were last read
        self.at_eof = False
        self.closed = False
        self.seen_size = offset  # the largest size seen of this generation: what an unread loss is measured by
        self.ended: str | None = None  # why no more bytes will come (handle given up); the reader then releases it
        self._builder = EventBuilder(
            path=path,
            identity=identity,
            host_name=source.host_name,
            tags=source.tags,
            fields=source.fields,
            input_type=source.input_type,
            sidecar=source.sidecar,
        )
        self._ts = TimestampExtractor(*source.timestamp) if source.timestamp else None
        self._runtime: str | None = None
        self.metadata: Metadata | None = None
        self._metadata_generation = -1
        self._start(offset)

    def _start(self, offset: int) -> None:
        max_bytes = self.source.max_event_bytes
        # container lines carry JSON escaping / a CRI prefix around the message: allow room for it
        line_limit = max_bytes * 2 + 4096 if self.source.input_type == "containers" else max_bytes
        self._splitter = LineSplitter(offset, line_limit)
        ml = self.source.multiline
        self._joiner = MultilineJoiner(ml[0], ml[1], ml[2], max_bytes) if ml else None
        # messages may stay JSON-encoded unless something here reads their text
        encoded = self._joiner is None and self._ts is None
        self._decoder: Decoder = (
            AutoDecoder(max_bytes, encoded) if self.source.input_type == "containers" else PlainDecoder(max_bytes)
        )
        # container logs nothing reads the text of: decoded a block of lines at a time (Docker runs)
        self._blocks = self._decoder if encoded and isinstance(self._decoder, AutoDecoder) else None

    @property
    def deadline(self) -> float | None:
        """When pending multi-line text must be flushed."""
        return self._joiner.deadline if self._joiner is not None else None

    @property
    def real(self) -> str:
        """The file the bytes are read from now."""
        return self.src.name if self.src is not None else ""

    def size(self) -> int:
        return self.src.size() if self.src is not None else self.read_offset

    def truncated(self) -> bool:
        """Copytruncate: the file is now shorter than what we read, or its first bytes changed."""
        if self.src is None:
            return False
        size = self.src.size()
        if size < self.read_offset:
            return True
        head = self.identity.head
        if head and self.src.pread(len(head), 0) != head:
            return True
        if len(head) < FINGERPRINT_BYTES < size or len(head) < size <= FINGERPRINT_BYTES:
            # grow the fingerprint while reading waits (an outage): the registry can then recognise this
            # generation by content after it is renamed or compressed; ids only use bytes before an event
            self.identity.extend(0, self.src.pread(FINGERPRINT_BYTES, 0))
        self.seen_size = max(self.seen_size, size)
        return False

    def switch_source(self, src: ByteSource) -> None:
        """The rest of this generation is in another file now (a copytruncate copy, a .gz)."""
        if self.src is not None:
            self.src.close()
        self.src = src
        self.at_eof = False

    def end(self, reason: str) -> tuple[int, int]:
        """Give up the file handle: nothing more will be read. Returns the byte range left unread."""
        unread = (self.read_offset, max(self.read_offset, self.seen_size))
        if self.src is not None:
            self.src.close()
            self.src = None
        self.ended = reason
        self.at_eof = True
        return unread

    def read(self, max_bytes: int, now: float) -> Batch:
        """Read up to `max_bytes` and return the events they complete."""
        if self.src is None:
            self.at_eof = True
            return Batch([], [])
        data = self.src.pread(max_bytes, self.read_offset)
        if not data:
            self.at_eof = True
            return Batch([], [])
        self.at_eof = len(data) < max_bytes
        if self.read_offset < FINGERPRINT_BYTES:
            self.identity.extend(self.read_offset, data)
        self.read_offset += len(data)
        self.seen_size = max(self.seen_size, self.read_offset)
        self.last_data = now
        if self._blocks is not None and self._blocks.runs:
            first, block = self._splitter.feed_block(data)
            batch = self._encode_runs(self._blocks.decode_block(first, block))
            batch.lines = len(first) + block.line_count
            batch.nbytes = len(data)
            return batch
        lines = self._splitter.feed(data)
        records = self._decoder.decode(lines)
        if self._joiner is not None:
            records = self._joiner.push(records, now)
        batch = self._encode(records)
        batch.lines = len(lines)
        batch.nbytes = len(data)
        return batch

    def flush_due(self, now: float) -> Batch:
        if self._joiner is None:
            return Batch([], [])
        return self._encode(self._joiner.flush_due(now))

    def finish(self) -> Batch:
        """The file will not grow any more: flush the unterminated line and pending pieces."""
        lines = self._splitter.flush()
        records = self._decoder.decode(lines) + self._decoder.flush()
        if self._joiner is not None:
            records = self._joiner.push(records, time.monotonic()) + self._joiner.flush()
        batch = self._encode(records)
        batch.lines = len(lines)
        return batch

    def _encode_runs(self, items: list[list[Record] | DockerRun]) -> Batch:
        """Events of records and of runs of Docker lines, in their order."""
        if len(items) == 1 and type(items[0]) is list:
            return self._encode(items[0])
        events: list[bytes] = []
        resumes: list[int] = []
        for item in items:
            if type(item) is list:
                batch = self._encode(item)
                events += batch.events
                resumes += batch.resumes
            else:
                assert isinstance(item, DockerRun)
                self._prepare()
                events += self._builder.build_run(item)
                resumes += item.offsets[1:]  # no split line waits in a run: each line's end
        return Batch(events, resumes)

    def _prepare(self) -> None:
        """The event builder knows the runtime and the current metadata."""
        runtime = self._decoder.runtime
        if runtime != self._runtime:
            self._runtime = runtime
            self._builder.set_runtime(runtime)
        meta = self.metadata
        if meta is not None and meta.generation != self._metadata_generation:
            self._metadata_generation = meta.generation
            self._builder.set_extra(*meta.fields())

    def _encode(self, records: list[Record]) -> Batch:
        if not records:
            return Batch([], [])
        self._prepare()
        read_time = utc_now_ms()
        ts = self._ts
        stamps = [ts(message_text(r.message)) for r in records] if ts is not None else None
        return Batch(self._builder.build_all(records, read_time, stamps), [r.resume for r in records])

    def resume_point(self) -> int:
        """Offset from which re-reading reproduces everything not yet turned into events."""
        points = [self._splitter.offset, self._decoder.pending_start(), self._joiner and self._joiner.pending_start()]
        return min(p for p in points if isinstance(p, int))

    def behind(self) -> int:
        """Bytes in the file not read yet."""
        try:
            return max(0, self.size() - self.read_offset)
        except OSError:
            return 0

    def on_disk(self) -> tuple[int, bool]:
        """(bytes of the open file on disk, whether it is deleted and held open only by us)."""
        try:
            return self.src.on_disk() if self.src is not None else (0, False)
        except OSError:
            return 0, False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.src is not None:
                self.src.close()
                self.src = None
