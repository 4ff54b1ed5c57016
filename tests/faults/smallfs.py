"""A real, small filesystem for "disk full" tests: a tmpfs of a few hundred KiB mounted by the test.

Mounting needs root (CAP_SYS_ADMIN); `small_fs` raises `SmallFsUnavailable` with the reason where it
cannot mount, and the caller decides (the registry-full test fails loudly rather than pretending).
`Filler` takes the remaining space with a file and gives it back, so a test can make the disk full
and then return the space while the process under test keeps running.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SmallFsUnavailable(RuntimeError):
    pass


@contextmanager
def small_fs(directory: Path, size: str = "256k") -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        raise SmallFsUnavailable("mounting a tmpfs needs root; run the fault tests as root (CI does)")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SmallFsUnavailable(f"mount -t tmpfs failed: {proc.stderr.strip()}")
    try:
        yield directory
    finally:
        # lazy: a process that still holds a file there must not make the test's cleanup fail
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


class Filler:
    """Fills a filesystem to the last byte with one file; `release()` frees the space again."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / ".filler"

    def fill(self) -> int:
        written = 0
        block = b"\0" * 4096
        with self.path.open("ab", buffering=0) as f:
            try:
                while n := f.write(block) or 0:
                    written += n
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
            # the 4 KiB write failed: take the last bytes one at a time so nothing fits
            try:
                while n := f.write(b"\0") or 0:
                    written += n
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        return written

    def release(self) -> None:
        self.path.unlink(missing_ok=True)

    @staticmethod
    def free_bytes(directory: Path) -> int:
        st = os.statvfs(directory)
        return st.f_bavail * st.f_frsize
