"""`shipper.heap.trim` really hands freed heap pages back to the kernel (glibc)."""

from __future__ import annotations

import ctypes.util
import os

import pytest

from shipper.heap import trim

MIB = 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _is_glibc() -> bool:
    name = ctypes.util.find_library("c") or ""
    return name.startswith("libc.so")


@pytest.mark.skipif(not _is_glibc(), reason="malloc_trim is a glibc function")
def test_trim_returns_freed_pages_in_the_middle_of_the_heap() -> None:
    trim()
    # 64 KiB buffers are below glibc's mmap threshold: they come from the heap. Keeping the last one
    # alive pins the top of the heap, so only trim's madvise of inner free pages can give memory back.
    blocks = [bytes(64 * 1024) for _ in range(1600)]  # 100 MiB, every page touched (zero-filled)
    keep = blocks[-1]
    del blocks
    before = _rss()
    assert trim() is True
    after = _rss()
    assert keep  # still alive
    assert before - after > 50 * MIB, (before / MIB, after / MIB)
