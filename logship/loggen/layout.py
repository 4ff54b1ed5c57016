"""The files of a generated EKS node, and how they are rotated.

`<root>/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` is what the runtime writes;
`<root>/var/log/containers/<pod>_<ns>_<container>-<id>.log` is kubelet's symlink to it;
`<root>/app/logs/log-YYYY-MM-DD.log` is an application's daily log (one new file per UTC day).

Rotation styles, as the real tools do them:
- `rename` (logrotate default): `0.log.N` shifted to `0.log.N+1`, `0.log` renamed to `0.log.1`, new `0.log`.
- `copytruncate` (logrotate): `0.log` copied to `0.log.1`, then truncated in place (same inode).
- `kubelet`: older rotated files gzipped, `0.log` renamed to `0.log.<YYYYMMDD-HHMMSS>`, new `0.log`,
  the oldest removed beyond `max_files`.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from logship.loggen.content import PodIdentity

ROTATIONS = ("none", "rename", "copytruncate", "kubelet")


class ContainerFile:
    """The log file of one container, with its kubelet symlink."""

    def __init__(self, root: Path, source_id: str, fmt: str, pod: PodIdentity, container: int) -> None:
        self.source_id = source_id
        self.format = fmt
        self.pod = pod
        self.container_name, self.container_id = pod.containers[container]
        self.dir = root / "var/log/pods" / f"{pod.namespace}_{pod.pod}_{pod.uid}" / self.container_name
        self.path = self.dir / "0.log"
        self.link = (
            root / "var/log/containers" / f"{pod.pod}_{pod.namespace}_{self.container_name}-{self.container_id}.log"
        )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        self._fh: BinaryIO = open(self.path, "ab")
        if not self.link.is_symlink():
            self.link.symlink_to(self.path)
        self.size = self.path.stat().st_size
        self.rotations = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.size += len(data)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def rotate(self, style: str, ts_ns: int, keep: int) -> None:
        if style == "none":
            return
        self._fh.flush()
        if style == "rename":
            self._shift_numbered(keep)
            self._fh.close()
            os.rename(self.path, self.dir / "0.log.1")
            self._fh = open(self.path, "ab")
        elif style == "copytruncate":
            self._shift_numbered(keep)
            shutil.copyfile(self.path, self.dir / "0.log.1")
            self._fh.truncate(0)  # the file is opened O_APPEND, so the next write lands at offset 0
        elif style == "kubelet":
            self._fh.close()
            self._kubelet_compress_and_prune(keep)
            os.rename(self.path, self.dir / f"0.log.{self._kubelet_suffix(ts_ns)}")
            self._fh = open(self.path, "ab")
        else:
            raise ValueError(f"unknown rotation style {style!r}; use one of {', '.join(ROTATIONS)}")
        self.size = 0
        self.rotations += 1

    def _shift_numbered(self, keep: int) -> None:
        for n in range(keep, 0, -1):
            older = self.dir / f"0.log.{n}"
            if older.exists():
                if n >= keep:
                    older.unlink()
                else:
                    os.rename(older, self.dir / f"0.log.{n + 1}")

    def _kubelet_suffix(self, ts_ns: int) -> str:
        seconds = ts_ns // 1_000_000_000
        while True:  # kubelet's suffix has one-second resolution; never overwrite an earlier rotation
            suffix = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y%m%d-%H%M%S")
            if not (self.dir / f"0.log.{suffix}").exists() and not (self.dir / f"0.log.{suffix}.gz").exists():
                return suffix
            seconds += 1

    def _kubelet_compress_and_prune(self, keep: int) -> None:
        for plain in sorted(self.dir.glob("0.log.*[0-9]")):
            with open(plain, "rb") as src, gzip.open(f"{plain}.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            plain.unlink()
        rotated = sorted(self.dir.glob("0.log.*.gz"))
        for old in rotated[: max(0, len(rotated) - (keep - 2))]:  # keep - 2: room for the plain + 0.log
            old.unlink()

    def files(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir())


class AppLogDir:
    """An application writing `log-YYYY-MM-DD.log`, switching file when the (UTC) date changes."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "app/logs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fh: BinaryIO | None = None
        self._date = ""
        self.events_per_file: Counter[str] = Counter()

    @staticmethod
    def file_name(date: str) -> str:
        return f"log-{date}.log"

    def write(self, date: str, data: bytes) -> None:
        if date != self._date:
            if self._fh is not None:
                self._fh.close()
            self._fh = open(self.dir / self.file_name(date), "ab")
            self._date = date
        assert self._fh is not None
        self._fh.write(data)
        self.events_per_file[self.file_name(date)] += 1

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def copytruncate(self, keep: int) -> bool:
        """logrotate's copytruncate of today's file: copy to `.1` (older copies shifted, the oldest
        dropped), then truncate the original in place. The writer keeps its O_APPEND handle."""
        if self._fh is None:
            return False
        self._fh.flush()
        path = self.dir / self.file_name(self._date)
        for n in range(keep, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            if older.exists():
                if n >= keep:
                    older.unlink()
                else:
                    os.rename(older, path.with_name(f"{path.name}.{n + 1}"))
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
        self._fh.truncate(0)
        return True

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
