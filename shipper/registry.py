"""Checkpoints: how far each file has been acknowledged, and their atomic persistence.

`Checkpoints` is pure bookkeeping. Each window sent to the aggregator is opened with the offset every
file will have reached once it is acknowledged; acks may arrive in any order, but offsets are applied
strictly in window order, so an ack for a later window never moves a file past an earlier window that
is still unacknowledged (a crash would otherwise skip that window's events).

`RegistryFile` writes the checkpoints atomically (temp file, fsync, rename, fsync of the directory):
after a crash the file holds either the previous or the new state, never a torn one.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

VERSION = 1


@dataclass(slots=True)
class Entry:
    path: str
    offset: int
    fp_len: int
    fp_hash: str
    seen: float  # wall-clock time the file was last seen on disk


@dataclass(slots=True, frozen=True)
class Position:
    """Where a file will be once a window is acknowledged."""

    path: str
    offset: int
    fp_len: int
    fp_hash: str


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
        if e is None or e.fp_hash != pos.fp_hash or e.fp_len != pos.fp_len or e.offset != pos.offset:
            self.entries[key] = Entry(pos.path, pos.offset, pos.fp_len, pos.fp_hash, now)
            self.changed = True
        else:
            e.seen = now

    def set_now(self, key: str, pos: Position, now: float) -> None:
        """Record a position that needs no ack (a new file discovered with nothing to send yet)."""
        if key not in self.entries:
            self._set(key, pos, now)

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
                    k: {"path": e.path, "offset": e.offset, "fp_len": e.fp_len, "fp": e.fp_hash, "seen": e.seen}
                    for k, e in self.entries.items()
                },
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoints:
        doc: Any = orjson.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("files"), dict):
            raise ValueError(f"not a version {VERSION} registry")
        entries = {}
        for key, f in doc["files"].items():
            entries[key] = Entry(str(f["path"]), int(f["offset"]), int(f["fp_len"]), str(f["fp"]), float(f["seen"]))
        return cls(entries)


class RegistryFile:
    """The registry on disk. `save` raises OSError (ENOSPC, EIO, ...) for the caller to retry."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

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
        data = checkpoints.to_bytes()
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
        checkpoints.changed = False


class CorruptRegistry(Exception):
    """The registry file could not be parsed; it was moved aside and the shipper starts without it."""
