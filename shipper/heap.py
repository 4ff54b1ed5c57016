"""Give freed heap memory back to the kernel (glibc `malloc_trim`).

Reading at full speed allocates and frees megabytes a second: read chunks, encoded event batches and
Lumberjack frames, each larger than pymalloc's 512-byte limit, so they come from glibc malloc. glibc
raises its mmap threshold after the first large free, so those buffers then live in the main heap, and
free pages in the middle of the heap stay resident until `malloc_trim` hands them back (it madvises free
pages anywhere in the heap, not only at its top). Calling it once a second costs well under a
millisecond; doing it through `M_TRIM_THRESHOLD`/`M_MMAP_THRESHOLD` instead pins the mmap threshold
and costs ~15% more CPU per byte shipped (every large buffer becomes an mmap + page faults).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _load() -> Callable[[int], int] | None:
    # The symbols the process already has (the interpreter links the C library), not
    # `ctypes.util.find_library`: that forks `/sbin/ldconfig -p`, which slim images may lack.
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_malloc_trim = _load()


def trim() -> bool:
    """Release free heap pages to the kernel; False where the C library has no `malloc_trim`."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True
