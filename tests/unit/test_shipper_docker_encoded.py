"""Docker json-file lines whose message stays JSON-encoded: the same events, byte for byte, as decoding.

`DockerDecoder(encoded=True)` hands whole lines in the json-file driver's layout to the event builder
with the `log` literal's bytes instead of its text. Whatever the input, the events must be exactly
those of the general path (`encoded=False`), which decodes every line and encodes the text again.
"""

from __future__ import annotations

import itertools
import json
from unittest import mock

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper import docker_runs
from shipper.docker_json import DockerDecoder
from shipper.docker_runs import DockerRun
from shipper.event import EventBuilder
from shipper.formats import AutoDecoder
from shipper.identity import FileIdentity
from shipper.lines import LineSplitter
from shipper.multiline import MultilineJoiner
from shipper.records import Record, message_text

T = "2026-01-01T12:00:00.123456789Z"
T2 = b"2026-01-01T12:00:00.987654321Z"
READ_TIME = "2026-09-09T00:00:00.000Z"


def go_literal(text: str) -> bytes:
    """`text` escaped as Docker's json-file driver (Go) writes it: `<`, `>`, `&`, U+2028/9 as `\\u` escapes."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x20 or ch in "<>&\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out).encode("utf-8", "surrogatepass")


def orjson_literal(text: str) -> bytes:
    try:
        return orjson.dumps(text)[1:-1]
    except TypeError:  # a lone surrogate
        return go_literal(text)


def ascii_literal(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=True)[1:-1].encode()


def other_escapes(text: str) -> bytes:
    """Escapes JSON allows but orjson does not write: `\\/`, upper-case hex."""
    return orjson_literal(text).replace(b"/", b"\\/").replace(b"\\u001b", b"\\u001B")


ENCODERS = {"orjson": orjson_literal, "go": go_literal, "ascii": ascii_literal, "other": other_escapes}

# messages heavy in what JSON escaping cares about
texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('"\\\n\r\t\b\f\x00\x1f\x7f/<>&nru0é€😀\u2028')),
        st.characters(codec="utf-8"),
        st.characters(),  # lone surrogates too
    ),
    max_size=40,
)
endings = st.sampled_from(["\n", "\r\n", "\\\n", "\\\\\n", "\\", "\\n", "", "\r"])
streams = st.sampled_from([b"stdout", b"stderr", b"stdin", b"stdou", b"STDOUT"])
times = st.sampled_from(
    [
        T.encode(),
        T2,
        b"2026-01-01T12:00:00Z",
        b"2026-01-01T12:00:00.1+02:00",
        b"2026-01-01X12:00:00.123456789Z",
        b"2026-01-01T12:00:00.123456789z",
        b"2026-01-01T12:00:00,123456789Z",
        "2026-01-01T12:00:00.12345678٣Z".encode(),
        b"x",
    ]
)


@st.composite
def docker_lines(draw: st.DrawFn) -> bytes:
    """Half of them in the json-file driver's layout (any message, escaped in any way), half anything like them."""
    text = draw(texts)
    if draw(st.booleans()):
        stream = draw(st.sampled_from([b"stdout", b"stderr"]))
        body = ENCODERS[draw(st.sampled_from(sorted(ENCODERS)))](text + "\n")
        time = draw(st.sampled_from([T.encode(), T2]))
        return b'{"log":"' + body + b'","stream":"' + stream + b'","time":"' + time + b'"}\n'
    text += draw(endings)
    stream = draw(streams)
    time = draw(times)
    layout = draw(st.sampled_from(["driver", "reordered", "spaced", "extra key"]))
    if layout == "driver":
        body = ENCODERS[draw(st.sampled_from(sorted(ENCODERS)))](text)
        line = b'{"log":"' + body + b'","stream":"' + stream + b'","time":"' + time + b'"}'
    else:
        obj: dict[str, object] = {"log": text, "stream": stream.decode(), "time": time.decode()}
        if layout == "reordered":
            obj = dict(reversed(obj.items()))
        if layout == "extra key":
            obj["attrs"] = {"a": 1}
        line = json.dumps(obj, separators=(", ", ": ") if layout == "spaced" else (",", ":")).encode()
    if draw(st.booleans()):  # damage: raw quotes, backslashes, control bytes, invalid UTF-8
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.binary(min_size=1, max_size=3)) + line[at:]
    return line + b"\n"


def docker_builder(data: bytes) -> EventBuilder:
    """The event builder of a Docker container log whose first bytes are `data`'s."""
    builder = EventBuilder(
        path="/var/log/containers/web-1_shop_nginx-" + "a" * 64 + ".log",
        identity=FileIdentity(1, 2, data[:1024], "node-1"),
        host_name="node-1",
        tags=["containers"],
        fields={},
        input_type="containers",
        sidecar=False,
    )
    builder.set_runtime("docker")
    return builder


def events(data: bytes, max_bytes: int, line_limit: int, encoded: bool) -> tuple[list[Record], list[bytes]]:
    splitter = LineSplitter(0, line_limit)
    decoder = AutoDecoder(max_bytes, encoded)
    records = decoder.decode(splitter.feed(data) + splitter.flush()) + decoder.flush()
    builder = docker_builder(data)
    return records, builder.build_all(records, READ_TIME)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(docker_lines(), min_size=1, max_size=12),
    # limits that cut lines and messages, or none
    max_bytes=st.one_of(st.just(1 << 20), st.integers(min_value=4, max_value=400)),
    line_limit=st.one_of(st.just(1 << 20), st.sampled_from([40, 90, 200])),
)
def test_encoded_messages_give_the_events_of_the_general_path(
    lines: list[bytes], max_bytes: int, line_limit: int
) -> None:
    # the first line decides the format: keep it a Docker one
    data = b'{"log":"start\\n","stream":"stdout","time":"' + T.encode() + b'"}\n' + b"".join(lines)
    fast_records, fast = events(data, max_bytes, line_limit, encoded=True)
    slow_records, slow = events(data, max_bytes, line_limit, encoded=False)
    assert fast == slow
    assert [r._replace(message=message_text(r.message)) for r in fast_records] == slow_records
    for ev in fast:
        orjson.loads(ev)  # and every event is valid JSON


def driver_line(body: bytes, stream: bytes = b"stdout") -> bytes:
    return b'{"log":"' + body + b'\\n","stream":"' + stream + b'","time":"' + T.encode() + b'"}\n'


def test_driver_lines_keep_their_literal_and_others_are_decoded() -> None:
    kept = [b"plain", b'say \\"hi\\"\\tnow \\\\ \\u001b[0m', "ünï €".encode(), b""]
    decoded = [
        b"\\u003chtml\\u003e",  # Go's HTML escaping: orjson writes `<html>`
        b"caf\\u00e9",  # an escape orjson does not write
        b"\\/",
        b"\\u001B",  # upper-case hex
        b"line\\r",  # `\r\n` ending: the `\r` goes too
        b"bad \xff utf-8",
        b'raw " quote',
        b"raw \t tab",
        b"odd \\",  # the `\n` escape is really `\\` then `n`: a piece, not a whole line
    ]
    dec = DockerDecoder(1 << 20, encoded=True)
    recs = dec.decode(LineSplitter().feed(b"".join(driver_line(b) for b in kept + decoded)))
    assert [r.message for r in recs[: len(kept)]] == kept
    assert all(r.stream == "stdout" and r.timestamp == "2026-01-01T12:00:00.123Z" for r in recs[: len(kept)])
    assert all(r.flags == () for r in recs[: len(kept)])
    # the last line is a piece: it waits for the rest of its line
    assert len(recs) == len(kept) + len(decoded) - 1
    assert all(isinstance(r.message, str) for r in recs[len(kept) :] + dec.flush())
    assert [message_text(r.message) for r in recs[: len(kept)]] == ["plain", 'say "hi"\tnow \\ \x1b[0m', "ünï €", ""]


def test_long_lines_truncated_lines_and_waiting_pieces_take_the_general_path() -> None:
    dec = DockerDecoder(64, encoded=True)  # messages of more than 64 / 4 characters may need clipping
    assert isinstance(dec.decode(LineSplitter().feed(driver_line(b"x" * 15)))[0].message, bytes)
    assert isinstance(dec.decode(LineSplitter().feed(driver_line(b"x" * 16)))[0].message, str)
    [cut] = dec.decode(LineSplitter(0, 80).feed(driver_line(b"y" * 11)))  # one byte over the line limit
    assert cut.flags == ("malformed_json", "truncated")
    piece = b'{"log":"part","stream":"stderr","time":"' + T.encode() + b'"}\n'
    recs = dec.decode(LineSplitter().feed(piece + driver_line(b"out") + driver_line(b"err", b"stderr")))
    # while the stderr piece waits, a checkpoint must not pass it: the general path keeps track of that
    assert [(r.message, r.resume) for r in recs] == [("out", 0), ("parterr", len(piece) + 2 * len(driver_line(b"out")))]


def test_consumers_of_the_text_see_text() -> None:
    rec = Record(0, 10, 10, b'a \\"b\\" \\u0001', "stdout", None, ())
    joiner = MultilineJoiner(r"^a", 10, 5.0, 1 << 20)
    assert joiner.push([rec, rec._replace(offset=10, message=b"  at x")], 0.0) == []
    assert [r.message for r in joiner.flush()] == ['a "b" \x01\n  at x']


def block_events(data: bytes, max_bytes: int, line_limit: int, cuts: list[int]) -> tuple[list[bytes], list[int], int]:
    """The harvester's way for container logs: chunks cut at `cuts`, a block of lines at a time.
    Returns the events, their resume offsets, and how many of them came from runs."""
    splitter = LineSplitter(0, line_limit)
    decoder = AutoDecoder(max_bytes, encoded=True)
    builder = docker_builder(data)
    events: list[bytes] = []
    resumes: list[int] = []
    from_runs = 0
    bounds = [0, *sorted(cuts), len(data)]
    for start, stop in itertools.pairwise(bounds):
        first, block = splitter.feed_block(data[start:stop])
        for item in decoder.decode_block(first, block):
            if isinstance(item, DockerRun):
                events += builder.build_run(item)
                resumes += item.offsets[1:]
                from_runs += len(item.texts)
            else:
                events += builder.build_all(item, READ_TIME)
                resumes += [r.resume for r in item]
    rest = decoder.decode(splitter.flush()) + decoder.flush()
    events += builder.build_all(rest, READ_TIME)
    resumes += [r.resume for r in rest]
    return events, resumes, from_runs


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(docker_lines(), min_size=1, max_size=12),
    max_bytes=st.one_of(st.just(1 << 20), st.integers(min_value=4, max_value=400)),
    line_limit=st.one_of(st.just(1 << 20), st.sampled_from([40, 90, 200])),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=4),
    partial_last=st.booleans(),
    # 0: a block with a line that is not plain is halved down to single lines, and lines with escapes are
    # cut out however many there are, so runs and lines mix
    smallest=st.sampled_from([0, docker_runs._SMALLEST]),
)
def test_runs_of_lines_give_the_events_and_checkpoints_of_the_general_path(
    lines: list[bytes], max_bytes: int, line_limit: int, cuts: list[int], partial_last: bool, smallest: int
) -> None:
    data = b'{"log":"start\\n","stream":"stdout","time":"' + T.encode() + b'"}\n' + b"".join(lines)
    if partial_last:  # the last line has no newline yet: it is flushed as the file ends
        data = data[:-1]
    cuts = [c for c in cuts if c <= len(data)]
    slow_records, slow = events(data, max_bytes, line_limit, encoded=False)
    with (
        mock.patch.object(docker_runs, "_SMALLEST", smallest),
        mock.patch.object(docker_runs, "_MOSTLY_ESCAPED", docker_runs._MOSTLY_ESCAPED if smallest else 2.0),
    ):
        fast, resumes, _ = block_events(data, max_bytes, line_limit, cuts)
    assert fast == slow
    assert resumes == [r.resume for r in slow_records]


def test_plain_lines_come_in_runs_and_every_other_line_is_decoded_alone() -> None:
    plain = [driver_line(b"a"), driver_line("ünï €".encode(), b"stderr"), driver_line(b"x" * 200), driver_line(b"")]
    many = b"".join(plain) * 60  # 240 lines, 20 KiB: blocks with an odd line are halved to find the plain ones
    all_plain, _, from_runs = block_events(many, 1000, 1 << 20, [])
    assert from_runs == 240
    assert all_plain == events(many, 1000, 1 << 20, encoded=False)[1]
    late_z = b'{"log":"a\\n","stream":"stdout","time":"' + T.encode()[:-1] + b'"}\n'
    early_z = b'{"log":"b\\n","stream":"stdout","time":"Z' + T.encode() + b'"}\n'
    odd = [
        driver_line(b'say \\"hi\\"'),  # an escape: canonical, but not plain
        driver_line(b"\\u003c"),  # Go's HTML escaping
        driver_line(b"line\\r"),  # `\r\n` ending
        driver_line(b"bad \xff"),  # invalid UTF-8
        driver_line(b"x" * 300),  # too long for max_event_bytes 1000
        driver_line(b"raw\ttab"),  # a control byte: not JSON
        driver_line(b'raw " quote'),
        driver_line(b"out", b"stdin"),
        b'{"log":"piece","stream":"stdout","time":"' + T.encode() + b'"}\n',  # waits for its last piece
        late_z + early_z,  # the times' bytes add up, but each time is wrong
        b'{"log":"a\\n","stream":"stdout","time":"' + T.encode() + b'","x":1}\n',
        driver_line(b"a\xc3") + driver_line(b"\xa9b"),  # a UTF-8 sequence cut across two lines
        driver_line(b"out", b"stdour"),  # a stream of the right length, but neither stream
        driver_line(b"out", b"stdouts"),  # everything after the text one byte off
        b'{"log":"a\\n","stream":"stdout","time":"' + T.encode()[:-2] + b'xZ"}\n',  # a letter for a digit
        b'{"log": "a\\n","stream":"stdout","time":"' + T.encode() + b'"}\n',  # valid JSON, another layout
        b'{"log":"\\n","stream":"stdout","time":"' + T.encode()[5:] + b'"}\n',  # shorter than any plain line
        b"not json\n",
        b"\n",
    ]
    for line in odd:
        data = many + line + many
        slow = events(data, 1000, 1 << 20, encoded=False)[1]
        for cuts in ([], [len(many) + 5], list(range(0, len(data), 1000))):
            fast, _, from_runs = block_events(data, 1000, 1 << 20, cuts)
            assert fast == slow
            # most plain lines still come in runs
            assert 240 <= from_runs <= 480


def test_lines_with_escapes_are_cut_out_of_a_block_and_a_block_of_them_is_left_whole() -> None:
    plain = driver_line(b"GET /health 200")
    escaped = driver_line(b'{\\"level\\":\\"info\\"}')
    # one line in ten has escapes: every plain line still comes in a run
    data = (plain * 9 + escaped) * 200
    items = list(docker_runs.split_runs(data, 0, len(data), 5000, 1000))
    assert sum(len(i.texts) for i in items if isinstance(i, DockerRun)) == 1800
    assert all(data[a:b] == escaped for a, b in (i for i in items if not isinstance(i, DockerRun)))
    runs = [i for i in items if isinstance(i, DockerRun)]
    assert runs[0].offsets[:3] == [5000, 5000 + len(plain), 5000 + 2 * len(plain)]
    # every line has escapes (JSON application logs): one stretch for the per-line decoder, found early
    data = escaped * 2000
    assert list(docker_runs.split_runs(data, 0, len(data), 0, 1000)) == [(0, len(data))]
