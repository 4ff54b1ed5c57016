"""Docker json-file and CRI decoding, partial-line merging, bad input flags."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.docker_json import DockerDecoder
from shipper.formats import AutoDecoder, CRIDecoder, PlainDecoder, detect
from shipper.lines import LineSplitter
from shipper.records import Record, parse_timestamp, rfc3339_to_ms

T = "2026-01-01T12:00:00.123456789Z"


def docker_line(text: str, stream: str = "stdout", time: str = T) -> bytes:
    return orjson.dumps({"log": text, "stream": stream, "time": time}) + b"\n"


def decode(decoder: object, data: bytes) -> list[Record]:
    s = LineSplitter()
    return decoder.decode(s.feed(data))  # type: ignore[attr-defined,no-any-return]


def test_docker_basic() -> None:
    data = docker_line("hello\n") + docker_line("err\r\n", "stderr")
    recs = decode(DockerDecoder(1 << 20), data)
    assert [(r.message, r.stream, r.timestamp, r.flags) for r in recs] == [
        ("hello", "stdout", "2026-01-01T12:00:00.123Z", ()),
        ("err", "stderr", "2026-01-01T12:00:00.123Z", ()),
    ]
    first_len = len(docker_line("hello\n"))
    assert (recs[0].offset, recs[0].end, recs[1].offset) == (0, first_len, first_len)


def test_docker_16k_split_merged_and_interleaved_streams() -> None:
    big = "x" * 16384
    data = (
        docker_line(big)  # piece 1 of stdout, no newline
        + docker_line("E\n", "stderr")
        + docker_line(big)
        + docker_line("end\n")
    )
    recs = decode(DockerDecoder(1 << 20), data)
    assert [r.stream for r in recs] == ["stderr", "stdout"]
    assert recs[1].message == big + big + "end"
    assert recs[1].offset == 0
    # the stderr record must not let a checkpoint pass the pending stdout piece at offset 0
    assert recs[0].resume == 0
    assert recs[1].resume == len(data)


def test_docker_bad_input_is_flagged_and_neighbours_intact() -> None:
    bad_json = b'{"log": "oops\n'
    not_log = b'{"other": 1}\n'
    bad_utf8 = b'{"log":"caf\xe9\\n","stream":"stdout","time":"' + T.encode() + b'"}\n'
    data = docker_line("a\n") + bad_json + not_log + bad_utf8 + docker_line("b\n")
    recs = decode(DockerDecoder(1 << 20), data)
    assert [r.message for r in recs] == ["a", '{"log": "oops', '{"other": 1}', "caf\ufffd", "b"]
    assert recs[1].flags == ("malformed_json",)
    assert recs[2].flags == ("malformed_json",)
    assert recs[3].flags == ("invalid_utf8",)
    assert recs[0].flags == recs[4].flags == ()


def test_max_event_bytes_truncates_merged_message() -> None:
    data = docker_line("y" * 3000) * 3 + docker_line("z\n")
    recs = decode(DockerDecoder(4096), data)
    assert len(recs) == 1
    assert "truncated" in recs[0].flags
    assert len(recs[0].message.encode()) <= 4096


def test_cri_partial_and_full() -> None:
    data = f"{T} stdout P hello \n{T} stderr F boom\n{T} stdout F world\n{T} stdout F \n".encode() + b"not a cri line\n"
    recs = decode(CRIDecoder(1 << 20), data)
    assert [(r.message, r.stream) for r in recs] == [
        ("boom", "stderr"),
        ("hello world", "stdout"),
        ("", "stdout"),
        ("not a cri line", None),
    ]
    assert recs[0].resume == 0
    assert recs[3].flags == ("malformed_cri",)
    assert recs[1].timestamp == "2026-01-01T12:00:00.123Z"


def test_flush_emits_dangling_piece_flagged_partial() -> None:
    d = CRIDecoder(1 << 20)
    decode(d, f"{T} stdout P never finished\n".encode())
    assert d.pending_start() == 0
    (rec,) = d.flush()
    assert rec.message == "never finished" and "partial" in rec.flags
    assert d.pending_start() is None


def test_detect_and_auto() -> None:
    assert detect(docker_line("x\n")) == "docker"
    assert detect(f"{T} stdout F x".encode()) == "cri"
    assert detect(b"plain text") == "plain"
    auto = AutoDecoder(1 << 20)
    assert auto.runtime is None
    recs = decode(auto, f"{T} stdout F x\n".encode())
    assert auto.runtime == "cri" and recs[0].message == "x"


def test_plain_strips_cr_and_flags_invalid_utf8() -> None:
    recs = decode(PlainDecoder(1 << 20), b"one\r\ntw\xffo\n")
    assert [(r.message, r.flags) for r in recs] == [("one", ()), ("tw\ufffdo", ("invalid_utf8",))]


def test_timestamps() -> None:
    assert rfc3339_to_ms(T) == "2026-01-01T12:00:00.123Z"
    assert rfc3339_to_ms("2026-01-01T12:00:00Z") == "2026-01-01T12:00:00.000Z"
    assert rfc3339_to_ms("2026-01-01T12:00:00.5Z") == "2026-01-01T12:00:00.500Z"
    assert rfc3339_to_ms("2026-01-01T14:00:00.123456+02:00") == "2026-01-01T12:00:00.123Z"
    assert rfc3339_to_ms("garbage") is None
    from zoneinfo import ZoneInfo

    assert parse_timestamp("2026-07-01 12:00:00,250", ZoneInfo("Europe/Paris")) == "2026-07-01T10:00:00.250Z"


piece_text = st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=20)
pieces = st.lists(piece_text, min_size=1, max_size=5)


@settings(max_examples=200)
@given(
    messages=st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]), pieces), min_size=1, max_size=8),
    fmt=st.sampled_from(["docker", "cri"]),
    order_seed=st.randoms(use_true_random=False),
)
def test_partial_merging_property(messages: list[tuple[str, list[str]]], fmt: str, order_seed: object) -> None:
    """Pieces of each stream, interleaved between streams, merge back into the original messages."""
    queues: dict[str, list[list[str]]] = {"stdout": [], "stderr": []}
    for stream, parts in messages:
        queues[stream].append(parts)
    # interleave the two streams' pieces randomly, keeping each stream's order
    lines: list[bytes] = []
    cursors = {s: [(i, j) for i, parts in enumerate(q) for j in range(len(parts))] for s, q in queues.items()}
    rnd = order_seed
    while any(cursors.values()):
        s = rnd.choice([k for k, v in cursors.items() if v])  # type: ignore[attr-defined]
        i, j = cursors[s].pop(0)
        parts = queues[s][i]
        last = j == len(parts) - 1
        if fmt == "docker":
            lines.append(docker_line(parts[j] + ("\n" if last else ""), s))
        else:
            lines.append(f"{T} {s} {'F' if last else 'P'} {parts[j]}\n".encode())
    dec = DockerDecoder(1 << 20) if fmt == "docker" else CRIDecoder(1 << 20)
    recs = decode(dec, b"".join(lines))
    for s in ("stdout", "stderr"):
        assert [r.message for r in recs if r.stream == s] == ["".join(p) for p in queues[s]]
    # a checkpoint at r.resume never skips a record emitted after r (re-reading reproduces it)
    total = len(b"".join(lines))
    assert recs[-1].resume == total
    for i, r in enumerate(recs):
        assert r.resume <= r.end
        assert all(later.offset >= r.resume for later in recs[i + 1 :])
    assert not dec.flush()


_CRI_TIMES = st.sampled_from(
    [
        T,
        "2026-01-01T12:00:00.987654321Z",
        "2026-01-01T12:00:00Z",
        "2026-01-01T12:00:00.1+02:00",
        "2026-01-01T12:00:00.123456789X",
        "x",
    ]
)
_CRI_TEXT = st.one_of(
    st.text(max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),  # invalid UTF-8 and stray spaces or newlines-free bytes
)


@given(
    st.lists(
        st.tuples(
            _CRI_TIMES,
            st.sampled_from([b"stdout", b"stderr", b"stdin"]),
            st.sampled_from([b"F", b"P", b"F:x", b"X"]),
            _CRI_TEXT,
        ),
        max_size=30,
    ),
    st.integers(min_value=8, max_value=200),
)
def test_cri_fast_path_matches_the_general_path(lines: list[tuple[str, bytes, bytes, bytes]], max_bytes: int) -> None:
    """The hot path for whole lines makes exactly the records the general, line-by-line path makes."""
    data = b"".join(
        t.encode() + b" " + s + b" " + tag + b" " + msg.replace(b"\n", b" ") + b"\n" for t, s, tag, msg in lines
    )
    fast = CRIDecoder(max_bytes)
    got = decode(fast, data) + fast.flush()
    slow = CRIDecoder(max_bytes)
    want: list[Record] = []
    for line in LineSplitter().feed(data):
        slow._last_end = line.end
        slow._general(line, line.data.split(b" ", 3), want)
    want += slow.flush()
    assert got == want
