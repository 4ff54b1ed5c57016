"""Lumberjack v2 codec throughput on one core: events/s to encode and to decode 256-byte JSON events.

    .venv/bin/python -m benchmarks.codec [--window 2048] [--events 400000] [--repeat 5]

Prints a table and writes benchmarks/results/codec-<timestamp>.json. Encoding is `encode_window`
(what the client does per window); decoding is `Decoder.feed` over 64 KiB reads (what the server does
per socket read), and, as a separate line, decoding plus `orjson.loads` of every event (what the server
hands to its handler). The best of `--repeat` runs is reported, to measure the code rather than the
neighbours on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from logship.lumberjack.codec import DataFrame, Decoder, encode_window
from logship.lumberjack.server import decode_events

EVENT_BYTES = 256
READ_CHUNK = 64 * 1024
RESULTS = Path(__file__).resolve().parent / "results"


WORDS = "GET POST PUT user order item cart login timeout retry upstream cache miss hit ok error warn".split()


def make_events(count: int) -> list[bytes]:
    """Container-log-like JSON events of exactly EVENT_BYTES bytes each, all different.

    Messages mix words and a random request id so zlib sees realistic (not degenerate) redundancy.
    """
    rng = random.Random(42)
    out = []
    for i in range(count):
        doc = {
            "@timestamp": f"2026-11-26T21:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
            "message": "",
            "log": {"file": {"path": "/var/log/containers/api-7d9f_default_api-0123.log"}, "offset": i * 256},
            "tags": ["containers"],
        }
        base = len(orjson.dumps(doc))
        words = " ".join(rng.choice(WORDS) for _ in range(8))
        text = f"{words} req={rng.getrandbits(64):016x} status={rng.choice((200, 201, 404, 500))} "
        doc["message"] = (text * 4)[: EVENT_BYTES - base]
        raw = orjson.dumps(doc)
        assert len(raw) == EVENT_BYTES, len(raw)
        out.append(raw)
    return out


def best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    """(best seconds, items) over `repeat` runs; process CPU time, so waiting for the CPU is not counted."""
    best = float("inf")
    items = 0
    for _ in range(repeat):
        start = time.process_time()
        items = fn()
        best = min(best, time.process_time() - start)
    return best, items


def bench(events: list[bytes], window: int, level: int, repeat: int) -> dict[str, float]:
    windows = [events[i : i + window] for i in range(0, len(events), window)]

    def encode() -> int:
        n = 0
        for w in windows:
            encode_window(w, level)
            n += len(w)
        return n

    wire = b"".join(encode_window(w, level) for w in windows)
    chunks = [wire[i : i + READ_CHUNK] for i in range(0, len(wire), READ_CHUNK)]

    def decode() -> int:
        dec = Decoder(max_window_size=max(window, 16384))
        n = 0
        for chunk in chunks:
            for frame in dec.feed(chunk):
                if type(frame) is DataFrame:
                    n += 1
        return n

    def decode_json() -> int:
        dec = Decoder(max_window_size=max(window, 16384))
        n = 0
        for chunk in chunks:
            payloads = [f.payload for f in dec.feed(chunk) if type(f) is DataFrame]
            events, _ = decode_events(payloads)
            n += len(events)
        return n

    enc_s, enc_n = best_of(repeat, encode)
    dec_s, dec_n = best_of(repeat, decode)
    js_s, js_n = best_of(repeat, decode_json)
    assert enc_n == dec_n == js_n == len(events)
    return {
        "compression_level": level,
        "wire_bytes_per_event": round(len(wire) / len(events), 1),
        "encode_events_per_s": round(enc_n / enc_s),
        "decode_events_per_s": round(dec_n / dec_s),
        "decode_and_parse_json_events_per_s": round(js_n / js_s),
        "encode_mb_per_s": round(enc_n * EVENT_BYTES / enc_s / 1e6, 1),
        "decode_mb_per_s": round(dec_n * EVENT_BYTES / dec_s / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--window", type=int, default=2048, help="events per window (Filebeat's bulk_max_size)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--levels", default="0,1,3", help="zlib levels to measure; 0 = uncompressed")
    parser.add_argument("--out", type=Path, default=None, help="results file (default benchmarks/results/...)")
    args = parser.parse_args(argv)

    print(f"building {args.events} events of {EVENT_BYTES} bytes ...", file=sys.stderr, flush=True)
    events = make_events(args.events)
    rows = []
    for level in (int(x) for x in args.levels.split(",")):
        print(f"measuring zlib level {level} ...", file=sys.stderr, flush=True)
        rows.append(bench(events, args.window, level, args.repeat))

    print(f"\nLumberjack v2 codec, one core, {EVENT_BYTES}-byte JSON events, windows of {args.window}")
    print(f"{'zlib':>4} {'wire B/ev':>9} {'encode ev/s':>12} {'decode ev/s':>12} {'decode+json ev/s':>17}")
    for r in rows:
        print(
            f"{r['compression_level']:>4} {r['wire_bytes_per_event']:>9} {r['encode_events_per_s']:>12,} "
            f"{r['decode_events_per_s']:>12,} {r['decode_and_parse_json_events_per_s']:>17,}"
        )
    result = {
        "benchmark": "lumberjack-codec",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python -m benchmarks.codec", *(argv if argv is not None else sys.argv[1:])]),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "params": {"events": args.events, "event_bytes": EVENT_BYTES, "window": args.window, "repeat": args.repeat},
        "target_events_per_s": 250_000,
        "results": rows,
    }
    out = args.out or RESULTS / f"codec-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
