"""Read a generated tree back into logical events, keyed by marker: the ground truth for tests.

Container files (current, rotated and gzipped) are decoded with the runtime formats, merging splits
and partials; app logs are cut into records where a line starts with a date, as the shipper's
multi-line joining does. Each event is returned under its `(source, seq)` marker.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logship.loggen import formats
from logship.loggen.content import MARKER_RE

APP_RECORD_START = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]")


@dataclass(frozen=True)
class Event:
    source: str
    seq: int
    message: str
    file: str
    stream: str | None = None  # container events only
    time: str | None = None  # container runtime time


@dataclass
class Tree:
    events: dict[tuple[str, int], Event] = field(default_factory=dict)
    duplicates: Counter[tuple[str, int]] = field(default_factory=Counter)
    unmarked: int = 0  # records without a marker (should be 0)

    def add(self, event: Event) -> None:
        key = (event.source, event.seq)
        if key in self.events:
            self.duplicates[key] += 1
        else:
            self.events[key] = event

    def count(self, source: str) -> int:
        return sum(1 for s, _ in self.events if s == source)


def _read(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _container_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith("0.log"))


def app_records(text: str) -> list[str]:
    """Split app log text into records: a line starting with a date begins a new record."""
    records: list[list[str]] = []
    for line in text.split("\n"):
        if not line:
            continue
        if APP_RECORD_START.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return ["\n".join(r) for r in records]


def read_tree(manifest: dict[str, Any]) -> Tree:
    tree = Tree()
    for src in manifest["sources"]:
        if src["kind"] == "container":
            for path in _container_files(Path(src["target"]).parent):
                for line in formats.decode_lines(_read(path), src["format"]):
                    _add(tree, line.message, str(path), line.stream, line.time)
        else:
            for path in sorted(Path(src["path"]).glob("log-*.log")):
                for record in app_records(path.read_text("utf-8")):
                    _add(tree, record, str(path), None, None)
    return tree


def _add(tree: Tree, message: str, path: str, stream: str | None, time: str | None) -> None:
    match = MARKER_RE.search(message)
    if match is None:
        tree.unmarked += 1
        return
    tree.add(Event(match.group(2), int(match.group(3)), message, path, stream, time))
