"""The bad-input corpus itself: every expectation points at the start of the line it describes."""

from __future__ import annotations

from pathlib import Path

from tests.faults.corpus import BIG, Corpus


def test_corpus_offsets_point_at_line_starts(tmp_path: Path) -> None:
    corpus = Corpus.write(tmp_path, "r1")
    cases = {e.case for e in corpus.expects}
    for needed in (
        "invalid_utf8",
        "nul_raw",
        "line_10mib",
        "partial_unfinished",
        "malformed_json_cut",
        "empty_line",
        "crlf",
    ):
        assert needed in cases
    for f in corpus.files:
        data = f.path.read_bytes()
        starts = {0} | {i + 1 for i, b in enumerate(data) if b == 0x0A}
        for e in f.expects:
            assert e.offset in starts, e
            if e.case == "good":
                assert e.message is not None
                assert e.message.encode() in data[e.offset : e.offset + 200]
        assert len(data) > BIG  # one 10 MiB line per file


def test_check_reports_missing_duplicate_and_wrong_flags(tmp_path: Path) -> None:
    corpus = Corpus.write(tmp_path, "r2")
    docs = []
    for e in corpus.expects:
        msg = e.message if e.message is not None else (e.contains[0] if e.contains else "x") + "\ufffd"
        if e.prefix is not None:
            msg = e.prefix if isinstance(e.prefix, str) else e.prefix[-1]
        docs.append({"message": msg, "log": {"file": {"path": e.path}, "offset": e.offset, "flags": sorted(e.flags)}})
    assert corpus.check(docs) == []
    assert any("missing" in p for p in corpus.check(docs[1:]))
    assert any("2 copies" in p for p in corpus.check([*docs, docs[0]]))
    bad = [dict(d) for d in docs]
    bad[0] = {**bad[0], "log": {**bad[0]["log"], "flags": ["truncated"]}}
    assert any("flags" in p for p in corpus.check(bad))
