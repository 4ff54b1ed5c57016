"""One shipper per registry: an exclusive lock on `<registry>.lock` held for the process lifetime.

Two shippers on one registry (two DaemonSet pods on a node during a surge rollout, or a second
release with the same host path) would each overwrite the other's checkpoints and ship every line
twice. The second one exits at start with an error naming the key, instead. The lock is `flock`, so
the kernel releases it when the holder dies: a crashed shipper never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from logship.config import ConfigError


@contextlib.contextmanager
def registry_lock(registry_path: str) -> Iterator[None]:
    path = f"{registry_path}.lock"
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"shipper.registry.path: cannot create the lock file {path}: {exc.strerror}; "
            "point it at a writable directory"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise ConfigError(
                f"shipper.registry.path: {registry_path} is in use by another shipper (pid {holder}, "
                f"lock {path}); run one shipper per registry (give each its own registry.path)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
