"""File identity: device + inode + a fingerprint of the file's first bytes.

Device and inode alone are not enough: once a file is deleted its inode is reused for a new file, and
a registry entry must not make the shipper skip the new file's beginning. The fingerprint covers the
first `FINGERPRINT_BYTES` bytes; a shorter file is fingerprinted on what it has, and the fingerprint
grows with the file (the first bytes of a log file never change, unless it is truncated, which the
harvester detects separately).

Event ids must not change when the fingerprint grows, or a replay after a crash would duplicate: the
id of an event starting at offset O uses the first min(O + 1, FINGERPRINT_BYTES) bytes (the file has at
least those when the event is read), which are the same whenever that event is read again; the event
at offset 0 uses the file's whole first line (capped at FINGERPRINT_BYTES), read before it exists. The id
depends on the start offset only, so a multi-line event replayed with more lines overwrites the
shorter one instead of duplicating it.
"""

from __future__ import annotations

import struct
from binascii import hexlify
from collections.abc import Sequence

import xxhash

FINGERPRINT_BYTES = 1024
_OFFSET = struct.Struct(">Q")  # an offset as 8 big-endian bytes, as int.to_bytes(8, "big") gives it


def fingerprint(head: bytes) -> str:
    return xxhash.xxh64_hexdigest(head)


class FileIdentity:
    """Identity of one open file; `head` is what we know of its first FINGERPRINT_BYTES bytes."""

    __slots__ = ("_full_seed", "_host", "dev", "head", "ino")

    def __init__(self, dev: int, ino: int, head: bytes, host: str) -> None:
        self.dev = dev
        self.ino = ino
        self.head = head[:FINGERPRINT_BYTES]
        self._host = host.encode("utf-8")
        self._full_seed: bytes | None = None
        self._update_seed()

    @property
    def key(self) -> str:
        """Registry key: at most one live file has this device and inode at any time."""
        return f"{self.dev}:{self.ino}"

    @property
    def fingerprint(self) -> tuple[int, str]:
        return len(self.head), fingerprint(self.head)

    def matches(self, fp_len: int, fp_hash: str) -> bool:
        """Is a registry entry (fingerprint length and hash) one of this file's past states?"""
        return len(self.head) >= fp_len and fingerprint(self.head[:fp_len]) == fp_hash

    def extend(self, offset: int, data: bytes) -> None:
        """Bytes `data` were read at `offset`: grow the head while it is short."""
        n = len(self.head)
        if n < FINGERPRINT_BYTES and offset <= n < offset + len(data):
            self.head += data[n - offset : FINGERPRINT_BYTES - offset]
            self._update_seed()

    def reset(self, head: bytes) -> None:
        """The file was truncated (copytruncate): its content, hence its ids, start anew."""
        self.head = head[:FINGERPRINT_BYTES]
        self._update_seed()

    def _update_seed(self) -> None:
        if len(self.head) >= FINGERPRINT_BYTES:
            self._full_seed = self._seed(self.head)

    def _seed(self, head: bytes) -> bytes:
        return b"%b\0%d\0%d\0%b" % (self._host, self.dev, self.ino, xxhash.xxh64_digest(head))

    def event_id(self, offset: int) -> str:
        """Deterministic id of the event that starts at `offset`."""
        seed = self._full_seed if offset >= FINGERPRINT_BYTES - 1 else None
        if seed is None:
            n = offset + 1
            if offset == 0:
                # The first byte alone is the same in every file of a format ('{' for Docker), so a new
                # file on a reused inode would get its first event's id from the old file and OpenSearch
                # would drop it as a duplicate. The whole first line is read before its event exists.
                nl = self.head.find(b"\n")
                n = nl + 1 if nl >= 0 else len(self.head)
            seed = self._seed(self.head[:n])
        return xxhash.xxh3_128_hexdigest(seed + offset.to_bytes(8, "big"))

    def event_ids(self, offsets: Sequence[int]) -> list[bytes]:
        """`event_id` of each offset, as ASCII bytes: the event builder's hot path."""
        seed = self._full_seed
        if seed is None or not offsets or min(offsets) < FINGERPRINT_BYTES - 1:
            return [self.event_id(offset).encode() for offset in offsets]
        # chained maps: no Python code runs per id
        return list(map(hexlify, map(xxhash.xxh3_128_digest, map(seed.__add__, map(_OFFSET.pack, offsets)))))
