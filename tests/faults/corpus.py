"""Bad-input corpus: files in every input format holding every kind of bad line, each between good
neighbours, and what each line must become in OpenSearch.

Every line is known by (file path, byte offset), which the shipper puts in `log.file.path` and
`log.offset`, so even a line without room for a marker (an empty line) is checked. Good lines carry a
unique marker and must arrive exactly, without flags; bad lines must arrive with the flag SPEC §5
names and a message that still says what was there.

Kinds: invalid UTF-8, NUL bytes (raw and JSON-escaped), lines of 10 MiB, CRI and Docker partial lines
that are never finished (the file is rotated away after them), malformed Docker JSON (cut short, not an
object, no `log` key, raw control bytes), empty lines, CRLF line endings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

BIG = 10 * 1024 * 1024
TS_RFC = "2026-11-26T10:00:00.123456789Z"
TS_MS = "2026-11-26T10:00:00.123Z"
CONTAINER_ID = "c" * 64


@dataclass
class Expect:
    path: str
    offset: int
    case: str
    message: str | None = None  # exact message, when known
    contains: tuple[str, ...] = ()  # substrings the message must hold
    prefix: str | tuple[str, ...] | None = None  # tuple: any of these
    flags: frozenset[str] = frozenset()  # flags that must be present
    exact_flags: bool = False  # True: no other flag allowed (good lines: none at all)
    max_message_bytes: int | None = None

    def problems(self, doc: Mapping[str, Any] | None) -> list[str]:
        where = f"{Path(self.path).name}@{self.offset} ({self.case})"
        if doc is None:
            return [f"{where}: missing"]
        msg = doc.get("message")
        flags = set((doc.get("log") or {}).get("flags") or [])
        out: list[str] = []
        if not isinstance(msg, str):
            return [f"{where}: message is {msg!r}"]
        if self.message is not None and msg != self.message:
            out.append(f"{where}: message {msg[:120]!r} != {self.message[:120]!r}")
        for s in self.contains:
            if s not in msg:
                out.append(f"{where}: message {msg[:120]!r} lacks {s!r}")
        if self.prefix is not None and not msg.startswith(self.prefix):
            out.append(f"{where}: message {msg[:80]!r} does not start with {self.prefix!r}")
        if not self.flags <= flags:
            out.append(f"{where}: flags {sorted(flags)} lack {sorted(self.flags - flags)}")
        if self.exact_flags and flags != set(self.flags):
            out.append(f"{where}: flags {sorted(flags)} != {sorted(self.flags)}")
        if self.max_message_bytes is not None and len(msg.encode("utf-8", "surrogatepass")) > self.max_message_bytes:
            out.append(f"{where}: message of {len(msg.encode())} bytes exceeds {self.max_message_bytes}")
        return out


@dataclass
class CorpusFile:
    path: Path
    expects: list[Expect] = field(default_factory=list)
    # written after the test has rotated the file away: partial lines that must then be flushed
    unfinished_tail: bool = False
    _buf: list[bytes] = field(default_factory=list)
    _size: int = 0

    def add(self, raw: bytes, expect: Expect | None) -> None:
        if expect is not None:
            expect.offset = self._size
            expect.path = str(self.path)
            self.expects.append(expect)
        self._buf.append(raw)
        self._size += len(raw)

    def write(self) -> None:
        with self.path.open("wb") as f:
            for chunk in self._buf:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        self._buf.clear()


def _e(case: str, **kw: Any) -> Expect:
    return Expect(path="", offset=-1, case=case, **kw)


def _good(marker: str) -> Expect:
    return _e("good", message=marker, exact_flags=True)


class Corpus:
    """Build with `Corpus.write(root, run_id, max_event_bytes)`; `expects` lists every checked line."""

    def __init__(self, files: list[CorpusFile], run_id: str) -> None:
        self.files = files
        self.run_id = run_id

    @property
    def expects(self) -> list[Expect]:
        return [e for f in self.files for e in f.expects]

    @property
    def good_markers(self) -> list[str]:
        return [e.message for e in self.expects if e.case == "good" and e.message]

    def check(self, docs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Problems when matching `docs` (OpenSearch _source) against the expectations; [] = all good."""
        by_key: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
        for d in docs:
            log = d.get("log") or {}
            key = ((log.get("file") or {}).get("path", ""), log.get("offset", -1))
            by_key.setdefault(key, []).append(d)
        out: list[str] = []
        for e in self.expects:
            found = by_key.get((e.path, e.offset), [])
            if len(found) > 1:
                out.append(f"{Path(e.path).name}@{e.offset} ({e.case}): {len(found)} copies")
            out.extend(e.problems(found[0] if found else None))
        return out

    @classmethod
    def write(cls, root: Path, run_id: str, max_event_bytes: int = 1024 * 1024) -> Corpus:
        root.mkdir(parents=True, exist_ok=True)
        files = [
            _docker(root / f"corpus-docker_{run_id}_json-{CONTAINER_ID}.log", run_id, max_event_bytes),
            _cri(root / f"corpus-cri_{run_id}_cri-{CONTAINER_ID}.log", run_id, max_event_bytes),
            _plain(root / f"log-{run_id}-app.log", run_id, max_event_bytes),
        ]
        for f in files:
            f.write()
        return cls(files, run_id)


def _docker_line(text: str | bytes, stream: str = "stdout") -> bytes:
    log = text if isinstance(text, str) else text.decode("utf-8", "surrogateescape")
    return orjson.dumps({"log": log, "stream": stream, "time": TS_RFC}) + b"\n"


def _docker(path: Path, run: str, max_event: int) -> CorpusFile:
    f = CorpusFile(path, unfinished_tail=True)
    n = 0

    def good() -> None:
        nonlocal n
        n += 1
        m = f"{run}-docker-good-{n}"
        f.add(_docker_line(m + "\n"), _good(m))

    good()
    # invalid UTF-8 inside the JSON string: not valid JSON text, so decoded with replacement
    m = f"{run}-docker-badutf8"
    f.add(
        b'{"log":"' + m.encode() + b' \xff\xfe\xc3(\\n","stream":"stdout","time":"' + TS_RFC.encode() + b'"}\n',
        _e("invalid_utf8", contains=(m, "\ufffd"), flags=frozenset({"invalid_utf8"})),
    )
    good()
    m = f"{run}-docker-nul-escaped"
    f.add(_docker_line(m + " a\x00b\n"), _e("nul_escaped", message=m + " a\x00b", exact_flags=True))
    good()
    m = f"{run}-docker-nul-raw"
    raw = b'{"log":"' + m.encode() + b' a\x00b\\n","stream":"stdout","time":"' + TS_RFC.encode() + b'"}'
    f.add(raw + b"\n", _e("nul_raw", contains=(m,), flags=frozenset({"malformed_json"})))
    good()
    m = f"{run}-docker-cut"
    raw = b'{"log":"' + m.encode() + b" never closed"
    f.add(raw + b"\n", _e("malformed_json_cut", message=raw.decode(), flags=frozenset({"malformed_json"})))
    good()
    m = f"{run}-docker-array"
    raw = b'["' + m.encode() + b'", 1, 2]'
    f.add(raw + b"\n", _e("malformed_json_array", message=raw.decode(), flags=frozenset({"malformed_json"})))
    good()
    m = f"{run}-docker-nolog"
    raw = orjson.dumps({"msg": m, "stream": "stdout", "time": TS_RFC})
    f.add(raw + b"\n", _e("malformed_json_nolog", message=raw.decode(), flags=frozenset({"malformed_json"})))
    good()
    f.add(b"\n", _e("empty_line", message="", flags=frozenset({"malformed_json"})))
    good()
    m = f"{run}-docker-crlf"
    f.add(_docker_line(m + "\r\n"), _e("crlf", message=m, exact_flags=True))
    good()
    m = f"{run}-docker-crlf-line"
    f.add(_docker_line(m + "\n")[:-1] + b"\r\n", _e("crlf_line_ending", message=m, exact_flags=True))
    good()
    m = f"{run}-docker-big"
    f.add(
        _docker_line(m + " " + "x" * BIG + "\n"),
        _e("line_10mib", prefix=(f'{{"log":"{m}', m), flags=frozenset({"truncated"}), max_message_bytes=max_event),
    )
    good()
    # a 16 KiB split whose last piece never comes: flushed with `partial` once the file is rotated away
    m = f"{run}-docker-unfinished"
    f.add(
        _docker_line(m + " piece one "),
        _e("partial_unfinished", message=m + " piece one ", flags=frozenset({"partial"})),
    )
    # stderr keeps going while stdout's line is unfinished
    for i in range(2):
        mm = f"{run}-docker-good-err-{i}"
        f.add(_docker_line(mm + "\n", "stderr"), _good(mm))
    return f


def _cri_line(stream: str, tag: str, text: bytes) -> bytes:
    return f"{TS_RFC} {stream} {tag} ".encode() + text + b"\n"


def _cri(path: Path, run: str, max_event: int) -> CorpusFile:
    f = CorpusFile(path, unfinished_tail=True)
    n = 0

    def good() -> None:
        nonlocal n
        n += 1
        m = f"{run}-cri-good-{n}"
        f.add(_cri_line("stdout", "F", m.encode()), _good(m))

    good()
    m = f"{run}-cri-badutf8"
    f.add(
        _cri_line("stdout", "F", m.encode() + b" \xff\xfe\xc3("),
        _e("invalid_utf8", contains=(m, "\ufffd"), flags=frozenset({"invalid_utf8"})),
    )
    good()
    m = f"{run}-cri-nul"
    f.add(_cri_line("stdout", "F", m.encode() + b" a\x00b"), _e("nul_raw", message=m + " a\x00b", exact_flags=True))
    good()
    m = f"{run}-cri-garbage"
    f.add(
        m.encode() + b" is not a CRI line\n",
        _e("malformed_cri", message=m + " is not a CRI line", flags=frozenset({"malformed_cri"})),
    )
    good()
    f.add(b"\n", _e("empty_line", message="", flags=frozenset({"malformed_cri"})))
    good()
    # a finished P+P+F line, with the other stream interleaved: merged into one event at the first piece
    m = f"{run}-cri-merged"
    f.add(
        _cri_line("stdout", "P", (m + " one ").encode()),
        _e("merged_partials", message=m + " one two three", exact_flags=True),
    )
    f.add(_cri_line("stderr", "F", f"{run}-cri-good-err-a".encode()), _good(f"{run}-cri-good-err-a"))
    f.add(_cri_line("stdout", "P", b"two "), None)
    f.add(_cri_line("stdout", "F", b"three"), None)
    good()
    m = f"{run}-cri-big"
    f.add(
        _cri_line("stdout", "F", m.encode() + b" " + b"y" * BIG),
        _e("line_10mib", prefix=m, flags=frozenset({"truncated"}), max_message_bytes=max_event),
    )
    good()
    # never finished: two P pieces on stdout, then only stderr; the file is rotated away after this
    m = f"{run}-cri-unfinished"
    f.add(
        _cri_line("stdout", "P", (m + " a ").encode()),
        _e("partial_unfinished", message=m + " a b", flags=frozenset({"partial"})),
    )
    f.add(_cri_line("stdout", "P", b"b"), None)
    for i in range(2):
        mm = f"{run}-cri-good-err-{i}"
        f.add(_cri_line("stderr", "F", mm.encode()), _good(mm))
    return f


def _plain(path: Path, run: str, max_event: int) -> CorpusFile:
    f = CorpusFile(path)
    n = 0

    def good() -> None:
        nonlocal n
        n += 1
        m = f"{run}-app-good-{n}"
        f.add(m.encode() + b"\n", _good(m))

    good()
    m = f"{run}-app-badutf8"
    f.add(
        m.encode() + b" \xff\xfe\xc3(\n", _e("invalid_utf8", contains=(m, "\ufffd"), flags=frozenset({"invalid_utf8"}))
    )
    good()
    m = f"{run}-app-nul"
    f.add(m.encode() + b" a\x00b\n", _e("nul_raw", message=m + " a\x00b", exact_flags=True))
    good()
    f.add(b"\n", _e("empty_line", message="", exact_flags=True))
    good()
    m = f"{run}-app-crlf"
    f.add(m.encode() + b"\r\n", _e("crlf", message=m, exact_flags=True))
    good()
    m = f"{run}-app-big"
    f.add(
        m.encode() + b" " + b"z" * BIG + b"\n",
        _e("line_10mib", prefix=m, flags=frozenset({"truncated"}), max_message_bytes=max_event),
    )
    good()
    m = f"{run}-app-badutf8-crlf"
    f.add(m.encode() + b" \x80\r\n", _e("invalid_utf8_crlf", contains=(m, "\ufffd"), flags=frozenset({"invalid_utf8"})))
    good()
    return f
