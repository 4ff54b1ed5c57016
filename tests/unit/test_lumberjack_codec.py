"""Lumberjack v2 codec: frames, limits, bad input, incremental decoding (hypothesis)."""

from __future__ import annotations

import itertools
import os
import random
import struct
import zlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logship.lumberjack.codec import (
    AckDecoder,
    DataFrame,
    DataRun,
    Decoder,
    Frame,
    ProtocolError,
    WindowFrame,
    WindowWriter,
    encode_ack,
    encode_window,
    isal_level,
)


def j_frame(seq: int, payload: bytes) -> bytes:
    return b"2J" + struct.pack(">II", seq, len(payload)) + payload


def c_frame(inner: bytes, level: int = 6) -> bytes:
    body = zlib.compress(inner, level)
    return b"2C" + struct.pack(">I", len(body)) + body


def decode_all(data: bytes, decoder: Decoder | None = None) -> list[Frame]:
    return (decoder or Decoder()).feed(data)


def expected_frames(windows: list[list[bytes]]) -> list[Frame]:
    out: list[Frame] = []
    for payloads in windows:
        out.append(WindowFrame(len(payloads)))
        out.extend(DataFrame(i, p) for i, p in enumerate(payloads, 1))
    return out


def test_window_wire_format_matches_the_protocol() -> None:
    wire = encode_window([b'{"a":1}', b"{}"])
    assert wire == b"2W\x00\x00\x00\x02" + j_frame(1, b'{"a":1}') + j_frame(2, b"{}")
    assert encode_ack(7) == b"2A\x00\x00\x00\x07"


def test_compressed_window_keeps_the_window_frame_outside() -> None:
    wire = encode_window([b'{"a":1}', b"{}"], compression_level=3)
    assert wire[:6] == b"2W\x00\x00\x00\x02"
    assert wire[6:8] == b"2C"
    (length,) = struct.unpack(">I", wire[8:12])
    assert len(wire) == 12 + length
    assert zlib.decompress(wire[12:]) == j_frame(1, b'{"a":1}') + j_frame(2, b"{}")
    assert decode_all(wire) == [WindowFrame(2), DataFrame(1, b'{"a":1}'), DataFrame(2, b"{}")]


@pytest.mark.parametrize("level", range(1, 10))
def test_every_compression_level_gives_a_standard_zlib_stream(level: int) -> None:
    payloads = [orjson.dumps({"message": f"line {i} " * (i % 7), "n": i}) for i in range(300)]
    wire = encode_window(payloads, compression_level=level)
    inflated = zlib.decompress(wire[12:])  # the standard inflater, as Logstash, go-lumber and Filebeat use
    assert inflated == b"".join(j_frame(i, p) for i, p in enumerate(payloads, 1))
    assert len(wire) < len(inflated) / 3
    assert decode_all(wire) == expected_frames([payloads])


def test_higher_compression_levels_never_choose_a_faster_isal_level() -> None:
    levels = [isal_level(level) for level in range(1, 10)]
    assert levels == sorted(levels) and levels[0] == 1 and levels[-1] == 3


def test_window_frame_inside_a_compressed_frame_is_accepted() -> None:
    inner = b"2W\x00\x00\x00\x01" + j_frame(1, b"{}")
    assert decode_all(c_frame(inner)) == [WindowFrame(1), DataFrame(1, b"{}")]


def test_byte_by_byte_feeding_yields_each_frame_once_complete() -> None:
    wire = encode_window([b'{"x":"y"}'] * 3)
    dec = Decoder()
    frames: list[Frame] = []
    for i in range(len(wire)):
        frames += dec.feed(wire[i : i + 1])
    assert frames == expected_frames([[b'{"x":"y"}'] * 3])
    assert dec.buffered == 0


def test_empty_window_and_empty_payload() -> None:
    assert decode_all(encode_window([])) == [WindowFrame(0)]
    assert decode_all(encode_window([b""])) == [WindowFrame(1), DataFrame(1, b"")]


def test_rejects_protocol_v1_with_a_clear_message() -> None:
    with pytest.raises(ProtocolError, match="unsupported protocol version '1'") as err:
        Decoder().feed(b"1W\x00\x00\x00\x01")
    assert err.value.reason == "unsupported_version"


def test_rejects_a_wrong_version_byte() -> None:
    with pytest.raises(ProtocolError, match=r"invalid protocol version byte 'G'") as err:
        Decoder().feed(b"GET / HTTP/1.1\r\n")
    assert err.value.reason == "bad_version"
    with pytest.raises(ProtocolError, match="looks like a TLS handshake"):
        Decoder().feed(b"\x16\x03\x01\x00\xa5")


@pytest.mark.parametrize("ftype", [b"X", b"\x00", b"D", b"A"])
def test_rejects_unknown_and_unexpected_frame_types(ftype: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"frame type|ack frame"):
        Decoder().feed(b"2" + ftype + b"\x00\x00\x00\x01")


def test_frame_over_the_limit_is_rejected_from_its_header_alone() -> None:
    dec = Decoder(max_frame_bytes=1000)
    # Only the header: the decoder must not wait for (and buffer) the announced 1 GB.
    with pytest.raises(ProtocolError, match="exceeds max_frame_bytes 1000") as err:
        dec.feed(b"2J" + struct.pack(">II", 1, 1_000_000_000))
    assert err.value.reason == "frame_too_large"
    with pytest.raises(ProtocolError, match="exceeds max_frame_bytes"):
        Decoder(max_frame_bytes=1000).feed(b"2C" + struct.pack(">I", 1001))


def test_frame_exactly_at_the_limit_is_accepted() -> None:
    payload = b"x" * 1000
    assert Decoder(max_frame_bytes=1000).feed(j_frame(1, payload)) == [DataFrame(1, payload)]


def test_window_over_the_limit_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="window of 11 events exceeds max_window_size 10") as err:
        Decoder(max_window_size=10).feed(encode_window([b"{}"] * 11))
    assert err.value.reason == "window_too_large"
    assert Decoder(max_window_size=10).feed(encode_window([b"{}"] * 10))[0] == WindowFrame(10)


def test_zip_bomb_is_stopped_at_the_decompressed_limit() -> None:
    # 64 MiB of zeros compresses to ~64 KiB; the limit is 1 MiB.
    bomb = c_frame(b"2J" + struct.pack(">II", 1, 64 << 20) + bytes(64 << 20), level=9)
    assert len(bomb) < 200_000
    with pytest.raises(ProtocolError, match="max_decompressed_bytes 1048576") as err:
        Decoder(max_decompressed_bytes=1 << 20).feed(bomb)
    assert err.value.reason == "decompressed_too_large"


def test_compressed_frame_with_invalid_or_truncated_zlib() -> None:
    with pytest.raises(ProtocolError, match="not a valid zlib stream"):
        Decoder().feed(b"2C" + struct.pack(">I", 5) + b"hello")
    good = zlib.compress(j_frame(1, b"{}"))
    cut = good[:-3]
    with pytest.raises(ProtocolError, match="truncated zlib stream"):
        Decoder().feed(b"2C" + struct.pack(">I", len(cut)) + cut)


def test_compressed_frame_ending_inside_a_frame() -> None:
    with pytest.raises(ProtocolError, match="ends inside a frame") as err:
        Decoder().feed(c_frame(j_frame(1, b"{}")[:-1]))
    assert err.value.reason == "truncated_frame"


def test_nested_compressed_frames_are_rejected() -> None:
    with pytest.raises(ProtocolError, match="nested"):
        Decoder().feed(c_frame(c_frame(j_frame(1, b"{}"))))


def test_garbage_inside_a_compressed_frame_is_rejected() -> None:
    with pytest.raises(ProtocolError):
        Decoder().feed(c_frame(b"\xff\xfe garbage"))


def test_a_failed_decoder_stays_failed() -> None:
    dec = Decoder()
    with pytest.raises(ProtocolError):
        dec.feed(b"XX")
    with pytest.raises(ProtocolError):
        dec.feed(encode_window([b"{}"]))


def test_truncated_stream_leaves_bytes_buffered() -> None:
    dec = Decoder()
    wire = encode_window([b'{"a":1}'])
    assert dec.feed(wire[:-2]) == [WindowFrame(1)]
    assert dec.buffered == len(wire) - 6 - 2  # the server reports this as a truncated frame at EOF


def test_ack_decoder() -> None:
    dec = AckDecoder()
    wire = encode_ack(0) + encode_ack(5) + encode_ack(2**32 - 1)
    assert dec.feed(wire[:4]) == []
    assert dec.feed(wire[4:9]) == [0]
    assert dec.feed(wire[9:]) == [5, 2**32 - 1]
    with pytest.raises(ProtocolError, match="expected an ack frame"):
        AckDecoder().feed(b"2J\x00\x00\x00\x01")
    with pytest.raises(ProtocolError, match="version '1'"):
        AckDecoder().feed(b"1A\x00\x00\x00\x01")


# -- properties ----------------------------------------------------------------------------------

json_event = st.dictionaries(
    st.text(max_size=8), st.text(max_size=40) | st.integers(-(2**63), 2**63 - 1), max_size=4
).map(orjson.dumps)
# The codec carries bytes; JSON validity is the server's concern, so arbitrary bytes must round-trip too.
events = st.lists(json_event | st.binary(max_size=300), max_size=20)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(
    windows=st.lists(events, min_size=1, max_size=4),
    level=st.sampled_from([0, 1, 6, 9]),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_round_trip_at_arbitrary_split_points(windows: list[list[bytes]], level: int, cuts: list[int]) -> None:
    wire = b"".join(encode_window(w, level) for w in windows)
    dec = Decoder()
    frames: list[Frame] = []
    for chunk in split_at(wire, cuts):
        frames += dec.feed(chunk)
    assert frames == expected_frames(windows)
    assert dec.buffered == 0


@settings(max_examples=100, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=200), max_size=40),
    level=st.sampled_from([0, 1, 3, 9]),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_a_window_written_batch_by_batch_is_the_window_of_all_its_events(
    payloads: list[bytes], level: int, cuts: list[int]
) -> None:
    """Seq numbers continue across `add` calls and the deflater sees one stream: whatever the batches,
    the reader gets one window of every payload in order, and uncompressed bytes are exactly
    `encode_window`'s."""
    writer = WindowWriter(level)
    bounds = [0, *sorted(c for c in cuts if c <= len(payloads)), len(payloads)]
    for a, b in itertools.pairwise(bounds):
        writer.add(payloads[a:b])
    assert writer.count == len(payloads)
    wire = b"".join(writer.finish())
    assert decode_all(wire) == expected_frames([payloads])
    if level == 0:
        assert wire == encode_window(payloads)
    else:
        assert wire[6:8] == b"2C"  # the window frame stays outside, as in one-shot encoding


@given(seqs=st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=10), cuts=st.lists(st.integers()))
def test_ack_round_trip_at_arbitrary_split_points(seqs: list[int], cuts: list[int]) -> None:
    wire = b"".join(encode_ack(s) for s in seqs)
    dec = AckDecoder()
    got: list[int] = []
    for chunk in split_at(wire, cuts):
        got += dec.feed(chunk)
    assert got == seqs


MAX_FRAME = 4096


@settings(max_examples=500, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=20))
def test_random_bytes_are_rejected_or_decoded_within_bounds(chunks: list[bytes]) -> None:
    dec = Decoder(max_frame_bytes=MAX_FRAME, max_decompressed_bytes=8192, max_window_size=100)
    for chunk in chunks:
        try:
            frames = dec.feed(chunk)
        except ProtocolError:
            return
        for f in frames:
            assert isinstance(f, WindowFrame | DataFrame)
        # Never holds more than one frame (header + limit) of undecoded input.
        assert dec.buffered <= MAX_FRAME + 10


@settings(max_examples=200, deadline=None)
@given(prefix=st.binary(max_size=4), rest=st.binary(min_size=0, max_size=200))
def test_fuzz_prefixed_with_valid_headers(prefix: bytes, rest: bytes) -> None:
    """Random bodies behind real frame headers reach the deeper code paths (C, J, W)."""
    for header in (b"2C", b"2J", b"2W"):
        dec = Decoder(max_frame_bytes=MAX_FRAME, max_decompressed_bytes=8192, max_window_size=100)
        try:
            dec.feed(header + prefix + rest)
        except ProtocolError:
            continue
        assert dec.buffered <= MAX_FRAME + 10


def _flatten(frames: list[Frame]) -> list[tuple[str, object, int | None]]:
    """Frames as (kind, payload or size, seq): a run's payloads one by one, only its last with a seq."""
    out: list[tuple[str, object, int | None]] = []
    for f in frames:
        if isinstance(f, DataRun):
            assert f.payloads and f.nbytes == sum(map(len, f.payloads))
            out += [("J", p, None) for p in f.payloads[:-1]]
            out.append(("J", f.payloads[-1], f.last_seq))
        elif isinstance(f, DataFrame):
            out.append(("J", f.payload, f.seq))
        else:
            assert isinstance(f, WindowFrame)
            out.append(("W", f.size, None))
    return out


def _decode_chunks(dec: Decoder, chunks: list[bytes]) -> tuple[list[Frame], str | None]:
    frames: list[Frame] = []
    for chunk in chunks:
        try:
            frames += dec.feed(chunk)
        except ProtocolError as exc:
            return frames, exc.reason
    return frames, None


piece = st.one_of(
    st.builds(lambda n: b"2W" + struct.pack(">I", n), st.integers(0, 120)),
    st.builds(j_frame, st.integers(0, 2**32 - 1), st.binary(max_size=300)),
    st.builds(
        lambda seqs, level: c_frame(b"".join(j_frame(s, b"{}") for s in seqs), level),
        st.lists(st.integers(0, 2**32 - 1), max_size=5),
        st.sampled_from([1, 6]),
    ),
    st.binary(max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(piece, max_size=12), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_runs_carry_the_same_payloads_last_seqs_and_errors_as_frames(pieces: list[bytes], cuts: list[int]) -> None:
    """`runs=True` only groups J frames: same payloads in order, each run's last seq, same error."""
    chunks = split_at(b"".join(pieces), cuts)
    limits = {"max_frame_bytes": 256, "max_decompressed_bytes": 512, "max_window_size": 100}
    frames, error = _decode_chunks(Decoder(**limits), chunks)
    runs, run_error = _decode_chunks(Decoder(**limits, runs=True), chunks)
    assert run_error == error
    flat, flat_runs = _flatten(frames), _flatten(runs)
    assert [(k, v) for k, v, _ in flat_runs] == [(k, v) for k, v, _ in flat]
    assert all(seq is None or seq == flat[i][2] for i, (_, _, seq) in enumerate(flat_runs))
    assert not any(isinstance(f, DataFrame) for f in runs)


def test_a_window_of_data_frames_is_one_run() -> None:
    wire = encode_window([b"a", b"bb", b"ccc"])
    assert Decoder(runs=True).feed(wire) == [WindowFrame(3), DataRun([b"a", b"bb", b"ccc"], 3, 6)]
    assert Decoder(runs=True).feed(encode_window([b"a", b"bb"], 6)) == [WindowFrame(2), DataRun([b"a", b"bb"], 2, 3)]
    dec = Decoder(runs=True)
    assert dec.feed(wire[:-4]) == [WindowFrame(3), DataRun([b"a", b"bb"], 2, 3)]  # runs end with the bytes fed
    assert dec.feed(wire[-4:]) == [DataRun([b"ccc"], 3, 3)]


def test_random_megabytes_do_not_hang() -> None:
    data = os.urandom(1 << 20)
    for start in range(0, 64):
        dec = Decoder(max_frame_bytes=1 << 16)
        try:
            for i in range(start, len(data), 4096):
                dec.feed(data[i : i + 4096])
        except ProtocolError:
            pass
        assert dec.buffered <= (1 << 16) + 10


def test_an_uncompressed_window_hands_out_its_payloads_without_copying_them() -> None:
    """The chunks of an uncompressed window are the payload objects themselves between their headers:
    a window of megabytes is written with writelines, never joined into one buffer first."""
    payloads = [b'{"message":"%d"}' % i * 50 for i in range(300)]
    writer = WindowWriter(0)
    writer.add(payloads[:100])
    writer.add(payloads[100:])
    chunks = writer.finish()
    assert len(chunks) == 1 + 2 * len(payloads)
    assert all(chunk is payload for chunk, payload in zip(chunks[2::2], payloads, strict=True))
    assert b"".join(chunks) == encode_window(payloads)


@pytest.mark.parametrize("level", [1, 3, 9])
def test_a_compressed_window_larger_than_a_deflate_slice_is_one_stream_of_every_frame(level: int) -> None:
    """Batches far beyond the deflater's slice (events of very different sizes) still give one `2C`
    frame that inflates to every `2J` frame in order."""
    rng = random.Random(level)
    payloads = [rng.randbytes(rng.choice([10, 900, 20_000])) for _ in range(400)]
    writer = WindowWriter(level)
    writer.add(payloads[:7])
    writer.add(payloads[7:])
    wire = b"".join(writer.finish())
    assert sum(map(len, payloads)) > 20 * 64 * 1024
    assert wire[6:8] == b"2C"
    assert decode_all(wire) == expected_frames([payloads])
