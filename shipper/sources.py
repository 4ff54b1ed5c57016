"""Where a harvester's bytes come from: an open plain file, or a gzipped rotated generation.

kubelet gzips a container's older log generations (`0.log.<ts>` -> `0.log.<ts>.gz`) and logrotate may
compress a copytruncate copy. When the plain file of a registered generation is gone before it was read
to the end, the rest is read from the `.gz` at the same uncompressed offsets, so events keep their ids.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import BinaryIO, Protocol


class ByteSource(Protocol):
    name: str  # the file the bytes are read from now

    def pread(self, size: int, offset: int) -> bytes: ...

    def size(self) -> int:
        """Bytes known to exist (for a .gz read part way: at least one more than read so far)."""
        ...

    def on_disk(self) -> tuple[int, bool]:
        """(bytes the open file takes on disk, whether it was deleted and is held only by us)."""
        ...

    def close(self) -> None: ...


class PlainSource:
    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def on_disk(self) -> tuple[int, bool]:
        st = os.fstat(self.fd)
        return st.st_size, st.st_nlink == 0

    def close(self) -> None:
        os.close(self.fd)


class GzipSource:
    """Sequential reads of a .gz at uncompressed offsets; going back means decompressing from the start."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self._raw: BinaryIO = os.fdopen(os.dup(fd), "rb")
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="rb")
        self._pos = 0
        self._eof = False

    def pread(self, size: int, offset: int) -> bytes:
        try:
            if offset < self._pos:
                self._gz.rewind()
                self._pos, self._eof = 0, False
            while self._pos < offset:
                skipped = self._gz.read(min(offset - self._pos, 1 << 20))
                if not skipped:
                    self._eof = True
                    return b""
                self._pos += len(skipped)
            data = self._gz.read(size)
        except (EOFError, OSError, zlib.error):
            # a .gz cut short (still being written, or damaged): what decompressed so far is all there is
            self._eof = True
            return b""
        self._pos += len(data)
        if len(data) < size:
            self._eof = True
        return data

    def size(self) -> int:
        return self._pos if self._eof else self._pos + 1

    def on_disk(self) -> tuple[int, bool]:
        st = os.fstat(self.fd)
        return st.st_size, st.st_nlink == 0

    def close(self) -> None:
        self._gz.close()
        self._raw.close()
        os.close(self.fd)


def read_head(path: str, size: int) -> bytes:
    """The first `size` uncompressed bytes of a plain or gzipped file; b"" if it cannot be read."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read(size)
        with open(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError, zlib.error):
        return b""
