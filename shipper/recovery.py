"""Finding a registered generation's bytes again after it left its path.

A file the shipper registered may be gone from where it was last seen: renamed by kubelet or logrotate
while the shipper was stopped or had no free handle, compressed into a `.gz`, or (copytruncate) copied
to a sibling before the original was truncated. Its siblings are searched by identity, best match first:

1. the same device and inode under another name (a rename): the file itself;
2. a plain file beginning with the same bytes and at least as long as the checkpoint (a copy);
3. a `.gz` whose uncompressed bytes begin the same (kubelet compressed the rotated generation).

The fingerprint is taken on uncompressed bytes, so offsets and event ids are those of the original.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from shipper.identity import FINGERPRINT_BYTES, fingerprint
from shipper.registry import Entry
from shipper.sources import GzipSource, PlainSource, read_head

log = logging.getLogger("logship.shipper.recovery")


@dataclass(slots=True)
class Recovered:
    src: PlainSource | GzipSource  # opened; the caller owns it
    head: bytes  # the first FINGERPRINT_BYTES uncompressed bytes
    how: str  # renamed | copy | gzip


def live_name(path: str) -> str:
    """The name a rotated generation had while it was live: `0.log.20261201-101010.gz` -> `0.log`,
    `log-2026-12-01.log.3` -> `log-2026-12-01.log`."""
    directory, name = os.path.split(path)
    i = name.find(".log")
    return os.path.join(directory, name[: i + 4]) if i > 0 else path


def siblings(real: str) -> list[str]:
    """Files next to `real` whose names continue its live name (`0.log.<ts>`, `log-x.log.1`, `….gz`,
    dateext), `real` itself excluded: a generation last seen as `.1` may be `.3` by now."""
    directory, base = os.path.split(live_name(real))
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    me = os.path.basename(real)
    return [os.path.join(directory, n) for n in sorted(names) if n.startswith(base) and n not in (base, me)]


def _matches(head: bytes, fp_len: int, fp_hash: str) -> bool:
    return len(head) >= fp_len and fingerprint(head[:fp_len]) == fp_hash


def find_generation(
    real: str, dev: int, ino: int, fp_len: int, fp_hash: str, offset: int, candidates: list[str] | None = None
) -> Recovered | None:
    """The file that now holds the generation last seen at `real`, opened; None if none does.

    With no fingerprint (the file was empty when it was registered) only a rename can be recognised.
    """
    paths = [real, *siblings(real)] if candidates is None else candidates
    plain: list[tuple[str, os.stat_result]] = []
    gz: list[str] = []
    for path in paths:
        if path.endswith(".gz"):
            gz.append(path)
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            plain.append((path, st))
    # 1. the same inode under another name
    for path, st in plain:
        if (st.st_dev, st.st_ino) == (dev, ino):
            found = _open_plain(path, fp_len, fp_hash, offset, "renamed")
            if found is not None:
                return found
    if fp_len == 0:
        return None
    # 2. a copy, 3. a compressed copy
    for path, st in plain:
        if (st.st_dev, st.st_ino) != (dev, ino) and st.st_size >= offset:
            found = _open_plain(path, fp_len, fp_hash, offset, "copy")
            if found is not None:
                return found
    for path in gz:
        head = read_head(path, FINGERPRINT_BYTES)
        if _matches(head, fp_len, fp_hash):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            return Recovered(GzipSource(fd, path), head, "gzip")
    return None


def _open_plain(path: str, fp_len: int, fp_hash: str, offset: int, how: str) -> Recovered | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        head = os.pread(fd, FINGERPRINT_BYTES, 0)
        size = os.fstat(fd).st_size
    except OSError:
        os.close(fd)
        return None
    if size >= offset and _matches(head, fp_len, fp_hash):
        return Recovered(PlainSource(fd, path), head, how)
    os.close(fd)
    return None


def unregistered(entries: Mapping[str, Entry], last_seen: float) -> Iterator[tuple[str, Recovered]]:
    """Rotated generations next to registered files that no entry knows and that were written after
    `last_seen` (when the previous run last saw its files): created and rotated away while it was down.

    Yields (the path their events report, the opened generation)."""
    known = [(e.fp_len, e.fp_hash) for e in entries.values() if e.fp_len]
    bases: dict[str, str] = {}  # live name -> the path its events report
    for e in entries.values():
        bases.setdefault(live_name(e.real or e.path), e.path)
    for live, path in sorted(bases.items()):
        for cand in siblings(live):
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if st.st_mtime <= last_seen or not stat.S_ISREG(st.st_mode):
                continue
            head = read_head(cand, FINGERPRINT_BYTES)
            if not head or any(fingerprint(head[:n]) == h for n, h in known if n <= len(head)):
                continue  # empty, or a registered generation (recovered by identity, or done)
            try:
                fd = os.open(cand, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            src = GzipSource(fd, cand) if cand.endswith(".gz") else PlainSource(fd, cand)
            known.append((len(head), fingerprint(head)))
            yield path, Recovered(src, head, "unregistered")
