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

An id is a hash of that identity (20 hex digits, 80 bits) followed by the offset (12 hex digits): the ids
of one file share a prefix and sort by offset. OpenSearch looks every `_id` up before it indexes a
document, and that lookup is cheaper for ids that share prefixes and arrive in order than for random
ones (about 6-8% more documents per CPU-second of the node, measured on a fresh index; more as an index
grows).
"""

from __future__ import annotations

from collections.abc import Sequence

import xxhash

FINGERPRINT_BYTES = 1024
_PREFIX_DIGITS = 20  # hex digits of the identity's hash: 80 bits, so two files' prefixes never meet
_OFFSET_DIGITS = b"%012x"  # 48 bits of offset (256 TiB); a longer offset just makes a longer id


def fingerprint(head: bytes) -> str:
    return xxhash.xxh64_hexdigest(head)


class FileIdentity:
    """Identity of one open file; `head` is what we know of its first FINGERPRINT_BYTES bytes."""

    __slots__ = ("_full_format", "_host", "dev", "head", "ino")

    def __init__(self, dev: int, ino: int, head: bytes, host: str) -> None:
        self.dev = dev
        self.ino = ino
        self.head = head[:FINGERPRINT_BYTES]
        self._host = host.encode("utf-8")
        self._full_format: bytes | None = None  # `prefix%012x` once the head is complete
        self._update_format()

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
            self._update_format()

    def reset(self, head: bytes) -> None:
        """The file was truncated (copytruncate): its content, hence its ids, start anew."""
        self.head = head[:FINGERPRINT_BYTES]
        self._update_format()

    def _update_format(self) -> None:
        if len(self.head) >= FINGERPRINT_BYTES:
            self._full_format = _id_format(self._seed(self.head))
        else:
            self._full_format = None

    def _seed(self, head: bytes) -> bytes:
        return b"%b\0%d\0%d\0%b" % (self._host, self.dev, self.ino, xxhash.xxh64_digest(head))

    def event_id(self, offset: int) -> str:
        """Deterministic id of the event that starts at `offset`."""
        if offset >= FINGERPRINT_BYTES - 1 and self._full_format is not None:
            return (self._full_format % offset).decode()
        n = offset + 1
        if offset == 0:
            # The first byte alone is the same in every file of a format ('{' for Docker), so a new
            # file on a reused inode would get its first event's id from the old file and OpenSearch
            # would drop it as a duplicate. The whole first line is read before its event exists.
            nl = self.head.find(b"\n")
            n = nl + 1 if nl >= 0 else len(self.head)
        return (_id_format(self._seed(self.head[:n])) % offset).decode()

    def event_ids(self, offsets: Sequence[int]) -> list[bytes]:
        """`event_id` of each offset, as ASCII bytes: the event builder's hot path."""
        fmt = self._full_format
        if fmt is None or not offsets or min(offsets) < FINGERPRINT_BYTES - 1:
            return [self.event_id(offset).encode() for offset in offsets]
        return list(map(fmt.__mod__, offsets))  # no Python code runs per id

    def offsets_with_ids(self, offsets: Sequence[int], between: bytes) -> list[bytes]:
        """For each offset: the offset in decimal, `between`, then the event's id (`event_ids`), made by
        one format each: the event builder joins one part per event where it would join three."""
        fmt = self._full_format
        if fmt is None or not offsets or min(offsets) < FINGERPRINT_BYTES - 1:
            return [b"%d%b%b" % (o, between, i) for o, i in zip(offsets, self.event_ids(offsets), strict=True)]
        both = b"%d" + between.replace(b"%", b"%%") + fmt
        # zip hands the same tuple back while nothing keeps it: no Python code and no new tuple per id
        return list(map(both.__mod__, zip(offsets, offsets, strict=False)))


def _id_format(seed: bytes) -> bytes:
    """`<prefix>%012x`: the ids of the identity `seed`, given an offset by `%`."""
    return xxhash.xxh3_128_hexdigest(seed)[:_PREFIX_DIGITS].encode() + _OFFSET_DIGITS
