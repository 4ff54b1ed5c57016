"""The set of files being tailed: discovery by glob, rotation, truncation, release.

Files are keyed by device:inode (following symlinks, so `/var/log/containers/*.log` resolves into
`/var/log/pods`). Rotation cases (SPEC §5):

- rename+create, kubelet `0.log` -> `0.log.<ts>`, delete while open: the path no longer leads to the
  open file, which is *detached*: read to the end, its unterminated last line flushed, then released.
  The new file at the path is a new key and starts at offset 0.
- copytruncate: same inode, size below our offset or different first bytes: restart at 0.
- inode reuse: a registry entry with that inode but another fingerprint is ignored: start at 0.
- daily files: new names matched by the glob are new files.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import stat
from dataclasses import dataclass
from typing import Protocol

from shipper.config import ShipperConfig
from shipper.harvester import Batch, Harvester, Metadata, Source
from shipper.identity import FINGERPRINT_BYTES, FileIdentity
from shipper.registry import Checkpoints, Position

log = logging.getLogger("logship.shipper.tailer")

# a detached file is released this long after its last byte was read: a writer that has not reopened
# its file yet (logrotate's postrotate) still gets its last lines shipped
DETACHED_GRACE = 1.0


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
    def __init__(self, cfg: ShipperConfig, checkpoints: Checkpoints) -> None:
        self._cfg = cfg
        self._sources = sources_from_config(cfg)
        self._checkpoints = checkpoints
        self.harvesters: dict[str, Harvester] = {}
        # read positions of files released while idle, so reopening them does not resend what is in flight
        self._released: dict[str, Position] = {}
        self.by_realpath: dict[str, str] = {}  # realpath -> key, for inotify events
        self.watch_dirs: set[str] = set()
        self._resumed_rotated = False  # the first scan looks for files rotated while we were down
        self.metadata: MetadataHook | None = None  # Kubernetes metadata: exclude, per-pod patterns, fields

    def discover(self) -> dict[str, Found]:
        found: dict[str, Found] = {}
        dirs: set[str] = set()
        for idx, inp in enumerate(self._cfg.inputs):
            for pattern in inp.paths:
                base = _static_prefix(pattern)
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

    def scan(self, now: float, wall: float) -> list[tuple[Harvester, Batch]]:
        """Rescan the globs: open new files, detach rotated/deleted ones, restart truncated ones."""
        out: list[tuple[Harvester, Batch]] = []
        found = self.discover()
        for key, h in self.harvesters.items():
            if key not in found:
                if not h.detached:
                    log.info("%s: rotated or deleted; reading it to the end", h.path)
                    h.detached = True
                    h.detached_at = now
                continue
            h.detached = False
            try:
                if h.truncated():
                    log.info("%s: truncated (copytruncate); reading from the start", h.path)
                    out.append((h, h.restart()))
            except OSError as exc:
                log.warning("%s: cannot check for truncation: %s", h.path, exc)
        for key, f in found.items():
            if key not in self.harvesters:
                h2 = self._open(f, now, wall)
                if h2 is not None:
                    self.harvesters[h2.key] = h2
                    self.by_realpath[f.realpath] = h2.key
        if not self._resumed_rotated:
            self._resumed_rotated = True
            self._resume_rotated(found, now, wall)
        self._checkpoints.touch(list(found), wall)
        return out

    def _resume_rotated(self, found: dict[str, Found], now: float, wall: float) -> None:
        """Finish files rotated away while the shipper was not running.

        A checkpoint whose file no longer matches the globs may have been renamed next to its old path
        (`0.log` -> `0.log.1` or `0.log.<ts>`) with unacknowledged lines left in it: find it there by
        inode (and fingerprint, checked by `_open`) and read it to the end, as for a live rotation.
        """
        for key, entry in list(self._checkpoints.entries.items()):
            if key in found or key in self.harvesters:
                continue
            source = next(
                (i for i, inp in enumerate(self._cfg.inputs) if any(fnmatch.fnmatch(entry.path, p) for p in inp.paths)),
                None,
            )
            if source is None:
                continue
            directory = os.path.dirname(os.path.realpath(entry.path))
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                if name.endswith(".gz"):
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and f"{st.st_dev}:{st.st_ino}" == key:
                    # events keep the path they had before the rotation, as for a live rotation
                    h = self._open(Found(path, source, path), now, wall, name=entry.path)
                    if h is not None and h.key == key and h.read_offset == entry.offset:
                        log.info("%s: rotated while stopped; reading it to the end from offset %d", path, h.read_offset)
                        h.detached = True
                        h.detached_at = now
                        self.harvesters[key] = h
                        self.by_realpath[path] = key
                    elif h is not None:
                        h.close()  # same inode, another file (fingerprint differs): nothing of ours
                    break

    def _open(self, f: Found, now: float, wall: float, name: str | None = None) -> Harvester | None:
        """`name`: the path events report (and take Kubernetes metadata from) when it is not `f.path`."""
        source, meta = self._sources[f.source], None
        if self.metadata is not None:
            # a file rotated while the shipper was stopped is resumed now or never: it does not wait
            opening = self.metadata.open_file(name or f.path, source, now, wait=name is None)
            if opening is None:  # excluded by an annotation, or its pod not known yet (asked again later)
                return None
            source, meta = opening.source, opening.metadata
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
        offset = 0
        hint = self._released.pop(ident.key, None)
        entry = self._checkpoints.entries.get(ident.key)
        for cand in (hint, entry):
            if cand is not None and ident.matches(cand.fp_len, cand.fp_hash) and cand.offset <= st.st_size:
                offset = max(offset, cand.offset)
        if entry is not None and offset == 0 and entry.offset:
            log.info(
                "%s: inode %s reused by a new file (fingerprint differs); reading from the start", f.path, ident.key
            )
        if offset > 0:
            log.info("%s: resuming at offset %d", f.path, offset)
        else:
            log.info("%s: new file, reading from the start", f.path)
        fp_len, fp_hash = ident.fingerprint
        if entry is None or offset == 0:
            self._checkpoints.set_now(ident.key, Position(f.path, offset, fp_len, fp_hash), wall)
        h = Harvester(name or f.path, fd, ident, offset, source)
        h.metadata = meta
        return h

    def reap(self, now: float) -> list[tuple[Harvester, Batch]]:
        """Release files that are done: detached and read to the end, or idle for close_inactive."""
        out: list[tuple[Harvester, Batch]] = []
        for key, h in list(self.harvesters.items()):
            if not h.at_eof:
                continue
            if h.detached and now - max(h.detached_at, h.last_data) >= DETACHED_GRACE:
                if h.behind() > 0:
                    h.at_eof = False
                    continue
                log.info("%s: read to the end after rotation/deletion; released", h.path)
                out.append((h, h.finish()))
                self._release(key, h, remember=False)
            elif not h.detached and now - h.last_data >= self._cfg.close_inactive and h.deadline is None:
                log.info("%s: no new data for %.0fs; file handle released", h.path, self._cfg.close_inactive)
                self._release(key, h, remember=True)
        return out

    def _release(self, key: str, h: Harvester, remember: bool) -> None:
        del self.harvesters[key]
        for real, k in list(self.by_realpath.items()):
            if k == key:
                del self.by_realpath[real]
        if remember:
            fp_len, fp_hash = h.identity.fingerprint
            self._released[key] = Position(h.path, h.resume_point(), fp_len, fp_hash)
        h.close()

    def close(self) -> None:
        for h in self.harvesters.values():
            h.close()
        self.harvesters.clear()


def _static_prefix(pattern: str) -> str:
    """The directory part of a glob before its first wildcard: watched for new files."""
    parts = pattern.split(os.sep)
    keep = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        keep.append(part)
    return os.sep.join(keep) if keep and os.path.isdir(os.sep.join(keep) or os.sep) else ""
