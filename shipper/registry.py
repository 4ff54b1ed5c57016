"""Checkpoints: how far each file has been acknowledged, and their atomic persistence.

`Checkpoints` is pure bookkeeping. Each window sent to the aggregator is opened with the offset every
file will have reached once it is acknowledged; acks may arrive in any order, but offsets are applied
strictly in window order, so an ack for a later window never moves a file past an earlier window that
is still unacknowledged (a crash would otherwise skip that window's events).

Besides the acknowledged offset, an entry remembers what was last seen of its file without needing an
ack: where it lives now (`real`, which changes when it is rotated), its fingerprint as it grows, and its
size. After a restart that is enough to find a rotated generation again by identity, to tell a file
read to the end from one with bytes left, and to say how many bytes were lost when it cannot be found.

A key is the file's `dev:ino`. When that inode starts a new generation (copytruncate, inode reuse) the
old generation is *retired* under `dev:ino@fingerprint`, together with its windows still in flight, so
both generations keep their own checkpoint.

`RegistryFile` writes the checkpoints atomically (temp file, fsync, rename, fsync of the directory):
after a crash the file holds either the previous or the new state, never a torn one.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass(slots=True)
class Entry:
    path: str  # the path events report (the glob match, e.g. the /var/log/containers symlink)
    offset: int  # acknowledged: everything before it reached OpenSearch (or was counted as lost)
    fp_len: int
    fp_hash: str
    seen: float  # wall-clock time the file was last seen on disk
    real: str = ""  # where the file itself was last seen (follows rotations)
    size: int = -1  # its size when last seen; -1: unknown
    lost_from: int = -1  # bytes from here on were already counted as lost (so a restart does not count them again)
    done: bool = False  # the generation was rotated away and read to its end: `size` is its final size
    read_out: bool = False  # this process read it to the end (not saved: after a restart it is read again)

    @property
    def finished(self) -> bool:
        """A generation that will not grow any more, acknowledged to its end. (A live file's `size` is only
        what was last seen: it may have grown since, so it is never finished.)"""
        return self.done and self.offset >= self.size


@dataclass(slots=True, frozen=True)
class Position:
    """Where a file will be once a window is acknowledged."""

    path: str
    offset: int
    fp_len: int
    fp_hash: str
    real: str = ""


def identity_of(key: str) -> tuple[int, int]:
    """(dev, ino) of the file a key names, also for a retired generation's `dev:ino@fp` key."""
    dev, _, ino = key.partition("@")[0].partition(":")
    return int(dev), int(ino)


class Checkpoints:
    def __init__(self, entries: dict[str, Entry] | None = None) -> None:
        self.entries: dict[str, Entry] = entries or {}
        self._windows: deque[tuple[int, dict[str, Position]]] = deque()
        self._done: set[int] = set()
        self._next_id = 0
        self.changed = False  # entries differ from what was last persisted

    @property
    def pending_windows(self) -> int:
        return len(self._windows)

    def open_window(self, positions: dict[str, Position]) -> int:
        wid = self._next_id
        self._next_id += 1
        self._windows.append((wid, positions))
        return wid

    def ack(self, wid: int, now: float) -> None:
        self._done.add(wid)
        while self._windows and self._windows[0][0] in self._done:
            done_id, positions = self._windows.popleft()
            self._done.discard(done_id)
            for key, pos in positions.items():
                self._set(key, pos, now)

    def _set(self, key: str, pos: Position, now: float) -> None:
        e = self.entries.get(key)
        if e is None:
            self.entries[key] = Entry(pos.path, pos.offset, pos.fp_len, pos.fp_hash, now, pos.real or pos.path)
            self.changed = True
            return
        e.seen = now
        if e.offset != pos.offset or e.path != pos.path:
            e.offset, e.path = pos.offset, pos.path
            self.changed = True
        if pos.fp_len > e.fp_len:  # the fingerprint only grows within one generation
            e.fp_len, e.fp_hash = pos.fp_len, pos.fp_hash
            self.changed = True

    def set_now(self, key: str, pos: Position, now: float, size: int = -1) -> None:
        """Register a file the moment it is seen, before anything of it is sent (no ack needed)."""
        if key not in self.entries:
            self._set(key, pos, now)
            self.entries[key].size = size

    def observe(self, key: str, real: str, fp: tuple[int, str], size: int, now: float) -> None:
        """What was seen of a file without an ack: where it is, its grown fingerprint, its size."""
        e = self.entries.get(key)
        if e is None:
            return
        e.seen = now
        fp_len, fp_hash = fp
        if real != e.real or size != e.size or fp_len > e.fp_len:
            e.real, e.size = real, size
            if fp_len > e.fp_len:
                e.fp_len, e.fp_hash = fp_len, fp_hash
            self.changed = True

    def complete(self, key: str, size: int) -> None:
        """The generation was rotated away (or given up) and read to its end: `size` is final."""
        e = self.entries.get(key)
        if e is not None and not (e.done and e.size == size):
            e.done, e.size = True, size
            self.changed = True

    def give_up(self, key: str, offset: int) -> None:
        """Bytes before `offset` cannot be read any more (counted as lost): do not look for them again."""
        e = self.entries.get(key)
        if e is not None and e.offset < offset:
            e.offset = offset
            self.changed = True

    def counted_lost(self, key: str, first: int) -> None:
        """Bytes from `first` on were counted as lost; the checkpoint itself passes them only in window order."""
        e = self.entries.get(key)
        if e is not None and (e.lost_from < 0 or first < e.lost_from):
            e.lost_from = first
            self.changed = True

    def retire(self, key: str, fp_hash: str) -> str:
        """The inode of `key` starts a new generation: move the old one (its entry and the positions of
        windows not acknowledged yet) to a key of its own, and return that key."""
        old = f"{key}@{fp_hash}"
        e = self.entries.pop(key, None)
        if e is not None:
            self.entries[old] = e
            self.changed = True
        for _, positions in self._windows:
            if key in positions:
                positions[old] = positions.pop(key)
        return old

    def touch(self, keys: list[str], now: float) -> None:
        for key in keys:
            e = self.entries.get(key)
            if e is not None:
                e.seen = now

    def clean(self, now: float, clean_after: float) -> list[str]:
        """Drop entries of files not seen on disk for `clean_after` seconds."""
        pending = {k for _, positions in self._windows for k in positions}
        gone = [k for k, e in self.entries.items() if now - e.seen > clean_after and k not in pending]
        for k in gone:
            del self.entries[k]
        if gone:
            self.changed = True
        return gone

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "version": VERSION,
                "files": {
                    k: {
                        "path": e.path,
                        "offset": e.offset,
                        "fp_len": e.fp_len,
                        "fp": e.fp_hash,
                        "seen": e.seen,
                        "real": e.real,
                        "size": e.size,
                        "lost_from": e.lost_from,
                        "done": e.done,
                    }
                    for k, e in self.entries.items()
                },
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoints:
        doc: Any = orjson.loads(data)
        if (
            not isinstance(doc, dict)
            or doc.get("version") not in READABLE_VERSIONS
            or not isinstance(doc.get("files"), dict)
        ):
            raise ValueError(f"not a version {VERSION} registry")
        entries = {}
        for key, f in doc["files"].items():
            path = str(f["path"])
            entries[key] = Entry(
                path,
                int(f["offset"]),
                int(f["fp_len"]),
                str(f["fp"]),
                float(f["seen"]),
                str(f.get("real") or path),
                int(f.get("size", -1)),
                int(f.get("lost_from", -1)),
                bool(f.get("done", False)),
            )
        return cls(entries)

    def snapshot(self) -> bytes:
        """The state to persist, taken on the event loop; `changed` is cleared (set it again if the write
        fails)."""
        data = self.to_bytes()
        self.changed = False
        return data


class RegistryFile:
    """The registry on disk. `save` raises OSError (ENOSPC, EIO, ...) for the caller to retry."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # writes run in threads; a write still running when the next one starts must finish first
        self._lock = threading.Lock()

    def load(self) -> Checkpoints:
        """The saved checkpoints; an unreadable or corrupt file is set aside, never fatal."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return Checkpoints()
        try:
            return Checkpoints.from_bytes(data)
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            os.replace(self.path, aside)
            raise CorruptRegistry(f"{self.path}: unreadable registry ({exc}); moved to {aside}") from None

    def save(self, checkpoints: Checkpoints) -> None:
        self.write(checkpoints.to_bytes())
        checkpoints.changed = False

    def write(self, data: bytes) -> None:
        """Atomically replace the file with `data`; blocking (fsyncs): run it in a thread."""
        with self._lock:
            self._write(data)

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class CorruptRegistry(Exception):
    """The registry file could not be parsed; it was moved aside and the shipper starts without it."""
