"""Container log encodings written by the generator parse back to the exact message."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from logship.loggen import formats

TS = 1_764_193_455_123_456_789  # 2025-11-26T21:44:15.123456789Z


def test_timestamp_formats() -> None:
    assert formats.rfc3339_nano(TS) == "2025-11-26T21:44:15.123456789Z"
    assert formats.app_timestamp(TS) == "2025-11-26 21:44:15.123"


def test_docker_short_line_is_one_json_record_with_newline_in_log() -> None:
    data = formats.encode_docker("hello world", "stdout", TS)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert orjson.loads(data) == {"log": "hello world\n", "stream": "stdout", "time": formats.rfc3339_nano(TS)}


def test_docker_long_line_splits_at_16k_without_newline_except_last() -> None:
    msg = "x" * 40_000
    records = [orjson.loads(r) for r in formats.encode_docker(msg, "stderr", TS).splitlines()]
    assert [len(r["log"]) for r in records] == [16384, 16384, 40_000 - 2 * 16384 + 1]
    assert [r["log"].endswith("\n") for r in records] == [False, False, True]
    assert {r["stream"] for r in records} == {"stderr"}


def test_cri_long_line_is_partials_then_full() -> None:
    msg = "y" * 40_000
    records = formats.encode_cri(msg, "stdout", TS).splitlines()
    tags = [r.split(b" ", 3)[2] for r in records]
    assert tags == [b"P", b"P", b"F"]
    assert all(r.startswith(formats.rfc3339_nano(TS).encode() + b" stdout ") for r in records)
    assert b"".join(r.split(b" ", 3)[3] for r in records) == msg.encode()


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="docker, cri"):
        formats.encode("syslog", "m", "stdout", TS)


messages = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\n\r"), max_size=300)


@given(
    fmt=st.sampled_from(formats.FORMATS),
    lines=st.lists(st.tuples(messages, st.sampled_from(["stdout", "stderr"])), min_size=1, max_size=20),
    split=st.integers(min_value=4, max_value=64),
)
def test_round_trip_with_splits_and_interleaved_streams(fmt: str, lines: list[tuple[str, str]], split: int) -> None:
    data = b"".join(formats.encode(fmt, m, s, TS + i, split) for i, (m, s) in enumerate(lines))
    decoded = formats.decode_lines(data, fmt)
    assert [(d.message, d.stream) for d in decoded] == lines
    for d, (m, _) in zip(decoded, lines, strict=True):
        assert d.records == len(formats._chunks(m.encode(), split))
    assert formats.detect_format(data.split(b"\n", 1)[0]) == fmt


@given(
    text=st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200),
    size=st.integers(min_value=4, max_value=40),
)
def test_chunks_never_cut_a_utf8_character(text: str, size: int) -> None:
    raw = text.encode()
    parts = formats._chunks(raw, size)
    assert b"".join(parts) == raw
    for part in parts:
        assert len(part) <= size
        part.decode("utf-8")  # raises if a character was cut
