"""Dead-letter file: events OpenSearch refused for good (mapping conflicts and other per-item 4xx).

One NDJSON record per event: `{"@timestamp", "index", "status", "error", "event"}`, where `event` is the
exact document that was sent. The file is rotated by size to `.1` .. `.keep` (oldest dropped), like
logrotate. Writes are fsynced before the window is acknowledged (an acknowledged event must be either in
OpenSearch or in this file); the caller runs `write` in a thread so the fsync never blocks the event loop.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)


class DeadLetterFile:
    def __init__(self, path: str | Path, max_bytes: int, keep: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self._lock = threading.Lock()
        self.written = 0

    def write(self, records: list[tuple[bytes, str, int, Any]]) -> None:
        """Append records of (document line, index, status, error) and flush them to disk."""
        if not records:
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        lines = []
        for source, index, status, error in records:
            doc = source.rstrip(b"\n")
            try:
                event: Any = orjson.Fragment(doc)
                orjson.loads(doc)  # a Fragment is embedded verbatim, so make sure it is JSON
            except orjson.JSONDecodeError:
                event = doc.decode("utf-8", "replace")
            lines.append(
                orjson.dumps({"@timestamp": now, "index": index, "status": status, "error": error, "event": event})
                + b"\n"
            )
        data = b"".join(lines)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size > 0 and size + len(data) > self.max_bytes:
                self._rotate()
            with open(self.path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.written += len(records)

    def _rotate(self) -> None:
        if self.keep <= 0:
            self.path.unlink(missing_ok=True)
            return
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        oldest.unlink(missing_ok=True)
        for n in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{n}")
            if src.exists():
                src.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        log.info("dead-letter file %s rotated (keeping %d)", self.path, self.keep)
