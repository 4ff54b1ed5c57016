"""The set of files being tailed: discovery, rotation, truncation, recovery by identity, release.

`scan()` never waits for the output: it runs while sending is blocked, so every file is registered
(identity + fingerprint, offset 0) and its handle held the moment it is seen, and a generation rotated
away during an outage is still held and read to the end once sending resumes. Files are keyed by
device:inode (following symlinks, so `/var/log/containers/*.log` resolves into `/var/log/pods`).
Rotation cases (SPEC §5):

- rename+create, kubelet `0.log` -> `0.log.<ts>`, delete while open: the path no longer leads to the
  open file, which is *detached*: read to the end, its unterminated last line flushed, then released.
  The new file at the path is a new key and starts at offset 0.
- copytruncate: same inode, size below our offset or different first bytes. The old generation is
  retired under a key of its own and finished from the copy logrotate left (or its .gz); the live file
  starts a new generation at 0.
- inode reuse, or a truncation while the shipper was down: the old generation is retired likewise and
  looked for by identity among the siblings of its last path (`recovery.py`).
- daily files: new names matched by the glob are new files.

What still cannot be read is reported through `on_lost(reason, path, first, last)`: a file created and
deleted before it could be opened, bytes truncated away with no copy, a generation not found again,
or a handle given up to a cap (`max_open_files`, `max_deleted_bytes_held`).
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from shipper.config import ShipperConfig
from shipper.harvester import Harvester, Metadata, Source
from shipper.identity import FINGERPRINT_BYTES, FileIdentity, fingerprint
from shipper.recovery import find_generation, unregistered
from shipper.registry import Checkpoints, Position, identity_of
from shipper.sources import ByteSource, PlainSource

log = logging.getLogger("logship.shipper.tailer")

# a detached file is released this long after its last byte was read: a writer that has not reopened
# its file yet (logrotate's postrotate) still gets its last lines shipped
DETACHED_GRACE = 1.0

LostFn = Callable[[str, str, int, int], None]  # reason, path, first byte, end (exclusive)


class Opening(Protocol):
    @property
    def source(self) -> Source: ...

    @property
    def metadata(self) -> Metadata | None: ...


class MetadataHook(Protocol):
    def open_file(self, path: str, source: Source, now: float, wait: bool = True) -> Opening | None: ...


@dataclass(slots=True)
class Found:
    path: str
    source: int
    realpath: str


def sources_from_config(cfg: ShipperConfig) -> list[Source]:
    out = []
    for inp in cfg.inputs:
        ml = (inp.multiline.start_pattern, inp.multiline.max_lines, inp.multiline.timeout) if inp.multiline else None
        ts = (inp.timestamp.pattern, inp.timestamp.timezone) if inp.timestamp else None
        out.append(
            Source(
                input_type=inp.type,
                tags=list(inp.tags),
                fields=dict(inp.fields),
                max_event_bytes=cfg.max_event_bytes,
                multiline=ml,
                timestamp=ts,
                host_name=cfg.host_name,
                sidecar=cfg.sidecar,
            )
        )
    return out


class Tailer:
    def __init__(
        self,
        cfg: ShipperConfig,
        checkpoints: Checkpoints,
        on_lost: LostFn = lambda reason, path, first, end: None,
        on_retire: Callable[[str, str], None] = lambda old, new: None,
        on_skip: Callable[[str, Position], None] | None = None,
    ) -> None:
        self._cfg = cfg
        self._sources = sources_from_config(cfg)
        self._checkpoints = checkpoints
        self._on_lost = on_lost
        self._on_retire = on_retire  # a key's generation moved to another key (pending windows follow)
        # bytes given up while windows of the same file may be in flight: the checkpoint skips them in order
        self._on_skip = on_skip or (lambda key, pos: checkpoints.give_up(key, pos.offset))
        self.harvesters: dict[str, Harvester] = {}
        # read positions of files released while idle, so reopening them does not resend what is in flight
        self._released: dict[str, Position] = {}
        self.by_realpath: dict[str, str] = {}  # realpath -> key, for inotify events
        self.watch_dirs: set[str] = set()
        self._scanned = False
        self.waiting: dict[str, float] = {}  # registered, no handle yet (max_open_files reached): since when
        self._orphans: set[str] = set()  # registered generations to look for by identity
        self.deleted_bytes_held = 0
        self._capped = False
        # when the previous run last saw its files: what was written after that happened while it was down
        self._last_run_seen = max((e.seen for e in checkpoints.entries.values()), default=0.0)
        self.metadata: MetadataHook | None = None  # Kubernetes metadata: exclude, per-pod patterns, fields

    # -- discovery -----------------------------------------------------------------------------

    def _input_of(self, path: str) -> int | None:
        for i, inp in enumerate(self._cfg.inputs):
            if any(fnmatch.fnmatch(path, p) for p in inp.paths) and not any(
                fnmatch.fnmatch(path, ex) for ex in inp.exclude
            ):
                return i
        return None

    def discover(self) -> dict[str, Found]:
        found: dict[str, Found] = {}
        dirs: set[str] = set()
        for idx, inp in enumerate(self._cfg.inputs):
            for pattern in inp.paths:
                base = _watch_root(pattern)
                if base:
                    dirs.add(base)
                for path in glob.glob(pattern):
                    if path.endswith(".gz") or any(fnmatch.fnmatch(path, ex) for ex in inp.exclude):
                        continue
                    try:
                        st = os.stat(path)  # follows symlinks
                    except OSError:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    key = f"{st.st_dev}:{st.st_ino}"
                    if key not in found:
                        real = os.path.realpath(path)
                        found[key] = Found(path, idx, real)
                        dirs.add(os.path.dirname(path))
                        dirs.add(os.path.dirname(real))
        self.watch_dirs = dirs
        return found

    def scan(self, now: float, wall: float, created: Iterable[str] = ()) -> None:
        """Rescan the globs and account for every registered file. Never waits; never reads events.

        `created`: paths the watcher saw created since the last scan (a file that is already gone
        again could not be opened, and is reported as lost).
        """
        found = self.discover()
        for key, h in list(self.harvesters.items()):
            if h.ended is not None:
                continue
            if key not in found:
                if not h.detached:
                    log.info("%s: rotated or deleted; reading it to the end", h.path)
                    h.detached = True
                    h.detached_at = now
                continue
            h.detached = False
            try:
                if h.truncated():
                    self._truncated(h, found[key], now, wall)
            except OSError as exc:
                log.warning("%s: cannot check for truncation: %s", h.path, exc)
        # files that waited for a handle go first, so a capped node takes turns instead of starving some
        for key in sorted(found, key=lambda k: self.waiting.get(k, float("inf"))):
            if key not in self.harvesters:
                self._add(found[key], now, wall)
        if not self._scanned:
            # first scan: generations registered before a restart that are not where they were, and
            # generations born and rotated away while the shipper was not running
            self._scanned = True
            self._orphans.update(
                k
                for k, e in self._checkpoints.entries.items()
                if k not in found and k not in self.harvesters and not e.finished
            )
            self._born_while_down(now)
        # waiting files that left their path before a handle was free: look for them by identity too
        self._orphans.update(k for k in self.waiting if k not in found)
        self.waiting = {k: t for k, t in self.waiting.items() if k in found}
        self._recover(now, wall)
        self._lost_before_open(created, found)
        self._cap_deleted(now)
        for key, h in self.harvesters.items():
            if h.ended is None:
                self._checkpoints.observe(key, h.real, h.identity.fingerprint, h.seen_size, wall)
        self._checkpoints.touch(list(found), wall)

    def _room(self) -> bool:
        return len(self.harvesters) < self._cfg.max_open_files

    def _add(self, f: Found, now: float, wall: float) -> None:
        h = self._open(f, now, wall, hold=self._room())
        if h is None:
            return
        if h.closed:  # registered only: no handle free
            self._warn_capped()
            self.waiting.setdefault(h.key, now)
            return
        self.waiting.pop(h.key, None)
        self.harvesters[h.key] = h
        self.by_realpath[f.realpath] = h.key

    def _warn_capped(self) -> None:
        if not self._capped:
            self._capped = True
            log.warning(
                "max_open_files (%d) reached: new files are registered and read when a handle is free; "
                "a file rotated away meanwhile is looked up by identity, or counted as lost",
                self._cfg.max_open_files,
            )

    def _opening(self, path: str, source: int, now: float, wait: bool) -> tuple[Source, Metadata | None] | None:
        """The source settings and metadata of a file's events; None: excluded by an annotation, or its pod
        not known yet (asked again at the next scan, for at most the metadata's wait)."""
        src = self._sources[source]
        if self.metadata is None:
            return src, None
        opening = self.metadata.open_file(path, src, now, wait=wait)
        return None if opening is None else (opening.source, opening.metadata)

    def _harvester(
        self, path: str, src: ByteSource, ident: FileIdentity, offset: int, how: tuple[Source, Metadata | None]
    ) -> Harvester:
        h = Harvester(path, src, ident, offset, how[0], real=src.name)
        h.metadata = how[1]
        return h

    def _open(self, f: Found, now: float, wall: float, hold: bool = True) -> Harvester | None:
        """Register the file at `f` (a new generation retires the old one of its inode) and open it.

        With `hold` False the file is registered and its handle closed again (returned closed)."""
        how = self._opening(f.path, f.source, now, wait=True)
        if how is None:
            return None
        try:
            fd = os.open(f.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("%s: cannot open: %s", f.path, exc)
            return None
        try:
            st = os.fstat(fd)
            head = os.pread(fd, FINGERPRINT_BYTES, 0)
        except OSError as exc:
            os.close(fd)
            log.warning("%s: cannot read: %s", f.path, exc)
            return None
        ident = FileIdentity(st.st_dev, st.st_ino, head, self._cfg.host_name)
        key = ident.key
        offset = 0
        hint = self._released.pop(key, None)
        if hint is not None and ident.matches(hint.fp_len, hint.fp_hash) and hint.offset <= st.st_size:
            offset = hint.offset
        entry = self._checkpoints.entries.get(key)
        if entry is not None:
            if ident.matches(entry.fp_len, entry.fp_hash) and entry.offset <= st.st_size:
                offset = max(offset, entry.offset)
            else:
                old = self._retire(key, entry.fp_hash)
                retired = self._checkpoints.entries[old]
                if not retired.finished and not retired.read_out:
                    log.info(
                        "%s: inode %s now holds another file (reused, or truncated while not watched); "
                        "looking for the rest of the previous one",
                        f.path,
                        key,
                    )
                    self._orphans.add(old)
        fp = ident.fingerprint
        self._checkpoints.set_now(key, Position(f.path, offset, fp[0], fp[1], f.realpath), wall, st.st_size)
        self._checkpoints.observe(key, f.realpath, fp, st.st_size, wall)
        h = self._harvester(f.path, PlainSource(fd, f.realpath), ident, offset, how)
        h.seen_size = max(h.seen_size, st.st_size)
        if not hold:
            h.close()
            return h
        log.info("%s: %s", f.path, f"resuming at offset {offset}" if offset else "new file, reading from the start")
        return h

    def _retire(self, key: str, fp_hash: str) -> str:
        old = self._checkpoints.retire(key, fp_hash)
        self._on_retire(key, old)
        return old

    # -- a generation leaves its path ----------------------------------------------------------

    def _truncated(self, h: Harvester, f: Found, now: float, wall: float) -> None:
        """copytruncate: finish the old generation from the copy, start the live file's new one."""
        old = self._retire(h.key, h.identity.fingerprint[1])
        del self.harvesters[h.key]
        h.key = old
        self.harvesters[old] = h
        dev, ino = identity_of(old)
        length, fp = h.identity.fingerprint
        rec = find_generation(h.real, dev, ino, length, fp, h.read_offset) if length else None
        if rec is not None:
            log.info(
                "%s: truncated (copytruncate); reading the rest from %s from offset %d",
                h.path,
                rec.src.name,
                h.read_offset,
            )
            h.switch_source(rec.src)
            h.detached, h.detached_at = True, now
        else:
            first, end = h.end("truncated")
            log.info("%s: truncated (copytruncate) with no copy found; reading it from the start", h.path)
            self._lose("truncated", h, first, end)
        self._add(f, now, wall)

    def _recover(self, now: float, wall: float) -> None:
        """Find registered generations by identity among the siblings of their last path."""
        for key in sorted(self._orphans):
            entry = self._checkpoints.entries.get(key)
            if entry is None or entry.finished or entry.read_out or key in self.harvesters:
                self._orphans.discard(key)
                continue
            if not self._room():
                self._warn_capped()
                return
            self._orphans.discard(key)
            source = self._input_of(entry.path)
            if source is None:
                continue  # no input reads this path any more
            dev, ino = identity_of(key)
            rec = find_generation(entry.real or entry.path, dev, ino, entry.fp_len, entry.fp_hash, entry.offset)
            if rec is None:
                if entry.size < 0:  # registered by a version that did not record sizes: nothing to count
                    log.info("%s: not found again after offset %d; no size was recorded", entry.path, entry.offset)
                else:
                    # what an earlier run already counted (a cap, a truncation) is not counted again
                    end = entry.size if entry.lost_from < 0 else min(entry.size, entry.lost_from)
                    if end > entry.offset:
                        self._on_lost("not_found", entry.path, entry.offset, end)
                self._checkpoints.give_up(key, max(entry.size, entry.offset))  # nothing of it is in flight
                continue
            how = self._opening(entry.path, source, now, wait=False)
            if how is None:  # excluded now
                rec.src.close()
                continue
            ident = FileIdentity(dev, ino, rec.head, self._cfg.host_name)
            h = self._harvester(entry.path, rec.src, ident, entry.offset, how)
            h.key = key  # a retired generation keeps its own checkpoint
            h.seen_size = max(entry.size, entry.offset)
            h.detached, h.detached_at = True, now
            self.harvesters[key] = h
            log.info(
                "%s: found again as %s (%s); reading it to the end from offset %d",
                entry.path,
                rec.src.name,
                rec.how,
                entry.offset,
            )

    def _born_while_down(self, now: float) -> None:
        """Read the rotated generations the previous run never saw (see `recovery.unregistered`)."""
        for path, rec in unregistered(self._checkpoints.entries, self._last_run_seen):
            source = self._input_of(path)
            if source is None:
                rec.src.close()
                continue
            how = self._opening(path, source, now, wait=False)
            if how is None:  # excluded by an annotation
                rec.src.close()
                continue
            st = os.fstat(rec.src.fd)
            ident = FileIdentity(st.st_dev, st.st_ino, rec.head, self._cfg.host_name)
            # kubelet frees and reuses inodes all the time: a key of its own for this generation
            key = f"{ident.key}@{fingerprint(rec.head)}"
            fp = ident.fingerprint
            self._checkpoints.set_now(key, Position(path, 0, fp[0], fp[1], rec.src.name), time.time())
            h = self._harvester(path, rec.src, ident, 0, how)
            h.key = key
            h.detached, h.detached_at = True, now
            self.harvesters[key] = h
            log.info("%s: %s was rotated while the shipper was not running; reading it", path, rec.src.name)

    def _lost_before_open(self, created: Iterable[str], found: dict[str, Found]) -> None:
        if not created:
            return
        seen = {f.path for f in found.values()} | {h.path for h in self.harvesters.values()}
        for path in set(created):
            if path in seen or path.endswith(".gz") or self._input_of(path) is None:
                continue
            if not os.path.lexists(path):
                self._on_lost("deleted_before_open", path, 0, 0)

    def _cap_deleted(self, now: float) -> None:
        """Deleted files held open keep their disk space: past the cap, give up the oldest."""
        held: list[tuple[float, int, Harvester]] = []
        total = 0
        for h in self.harvesters.values():
            if h.ended is None and h.detached:
                size, deleted = h.on_disk()
                if deleted:
                    held.append((h.detached_at, size, h))
                    total += size
        cap = self._cfg.max_deleted_bytes_held
        if total > cap:
            log.warning(
                "deleted files held open take %d bytes, over max_deleted_bytes_held (%d); giving up the oldest",
                total,
                cap,
            )
            for _, size, h in sorted(held, key=lambda t: t[0]):
                if total <= cap:
                    break
                first, end = h.end("deleted_bytes_cap")
                self._lose("deleted_bytes_cap", h, first, end)
                total -= size
        self.deleted_bytes_held = total

    def _lose(self, reason: str, h: Harvester, first: int, end: int) -> None:
        """A held generation's unread bytes are given up: count them, and let its checkpoint pass them."""
        if end <= first:
            return  # nothing was left to read
        self._on_lost(reason, h.path, first, end)
        self._checkpoints.counted_lost(h.key, first)
        fp_len, fp_hash = h.identity.fingerprint
        self._on_skip(h.key, Position(h.path, end, fp_len, fp_hash, h.real))

    # -- release -------------------------------------------------------------------------------

    def reap(self, now: float) -> list[tuple[Harvester, bool]]:
        """Files that are done: read to the end after rotation, given up, or idle for close_inactive.

        Each comes with whether it is finished for good: the caller then flushes its last events
        (`finish()`; an idle file keeps its unterminated line for when it is reopened) and `release`s it."""
        out: list[tuple[Harvester, bool]] = []
        for h in list(self.harvesters.values()):
            if h.ended is not None:
                out.append((h, True))
            elif not h.at_eof:
                continue
            elif h.detached and now - max(h.detached_at, h.last_data) >= DETACHED_GRACE:
                if h.behind() > 0:
                    h.at_eof = False
                    continue
                log.info("%s: read to the end after rotation/deletion; released", h.path)
                out.append((h, True))
            elif not h.detached and now - h.last_data >= self._cfg.close_inactive and h.deadline is None:
                log.info("%s: no new data for %.0fs; file handle released", h.path, self._cfg.close_inactive)
                out.append((h, False))
        return out

    def release(self, h: Harvester) -> None:
        key = h.key
        if self.harvesters.get(key) is h:
            del self.harvesters[key]
        for real, k in list(self.by_realpath.items()):
            if k == key:
                del self.by_realpath[real]
        if not h.detached and h.ended is None:  # idle, still at its path: reopened later where it was
            fp_len, fp_hash = h.identity.fingerprint
            self._released[key] = Position(h.path, h.resume_point(), fp_len, fp_hash)
        else:
            entry = self._checkpoints.entries.get(key)
            if entry is not None:  # its windows are on their way: not to be looked for if its inode is reused
                entry.read_out = True
                self._checkpoints.complete(key, max(h.read_offset, entry.offset))
        h.close()

    def close(self) -> None:
        for h in self.harvesters.values():
            h.close()
        self.harvesters.clear()


def _watch_root(pattern: str) -> str:
    """The directory to watch for a glob's new files: its static prefix, or the nearest existing parent
    (so a directory created later is seen appearing)."""
    keep: list[str] = []
    for part in pattern.split(os.sep)[:-1]:
        if glob.has_magic(part):
            break
        keep.append(part)
    if not keep:
        return ""
    d = os.sep.join(keep) or os.sep
    while not os.path.isdir(d) and d != os.sep:
        d = os.path.dirname(d)
    return d
