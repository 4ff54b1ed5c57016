"""Summaries of the profiles a `--profile DIR` run left behind.

python -m benchmarks.profiling DIR [--top 25]

`<name>-N.txt` (py-spy samples, `--profiler sample`, the default): the share of samples whose innermost
frame is each function (its own time, C calls it makes included), each line of the busiest functions,
each source file, and the inclusive share of the functions most often on the stack. Samples are of
time the process was running, not waiting, so the shares are shares of its CPU time.
`<name>-N.prof` (cProfile, `--profiler cprofile`): pstats' own-time table.
"""

from __future__ import annotations

import argparse
import io
import pstats
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# one py-spy frame: `function (path:line)`
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^():]*)(?::(?P<line>\d+))?\)$")
# a path is cut down to its package's part: under site-packages, the standard library or this checkout
_SHORTEN = re.compile(
    r"^.*/(?:site-packages|dist-packages)/|^.*/lib/python3\.\d+/|^.*?/(?=(?:shipper|aggregator|logship|benchmarks)/)"
)


@dataclass
class Samples:
    """Collapsed stacks of one process, counted by what was running."""

    total: int = 0
    own: Counter[str] = field(default_factory=Counter)  # innermost function
    lines: Counter[str] = field(default_factory=Counter)  # innermost function and line
    files: Counter[str] = field(default_factory=Counter)  # innermost source file
    inclusive: Counter[str] = field(default_factory=Counter)  # function anywhere on the stack


def parse_frame(frame: str) -> tuple[str, str, str]:
    """(function, short path, line) of a py-spy frame; a frame in another shape is its own function."""
    m = _FRAME.match(frame)
    if m is None:
        return frame, "?", ""
    return m["func"], _SHORTEN.sub("", m["path"]), m["line"] or ""


def read_samples(text: str) -> Samples:
    out = Samples()
    for raw in text.splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [parse_frame(f) for f in stack.split(";")]
        func, path, line = frames[-1]
        out.total += n
        out.own[f"{func} ({path})"] += n
        out.lines[f"{func} ({path}:{line})"] += n
        out.files[path] += n
        for name in {f"{f} ({p})" for f, p, _ in frames}:
            out.inclusive[name] += n
    return out


def sample_summary(samples: Samples, top: int) -> str:
    if not samples.total:
        return "no samples (the process exited before py-spy attached, or it never ran)\n"
    out = io.StringIO()

    def table(title: str, counter: Counter[str], limit: int) -> None:
        out.write(f"{title}\n")
        for key, n in counter.most_common(limit):
            out.write(f"  {100 * n / samples.total:5.1f}%  {key}\n")

    out.write(f"{samples.total:,} samples of the process running\n")
    table("own time by function (C calls count to the function that makes them)", samples.own, top)
    table("own time by line", samples.lines, top)
    table("own time by source file", samples.files, max(10, top // 2))
    table("on the stack (inclusive)", samples.inclusive, top)
    return out.getvalue()


def summary(path: Path, top: int) -> str:
    if path.suffix == ".txt":
        return sample_summary(read_samples(path.read_text(errors="replace")), top)
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    p.add_argument("dir", type=Path)
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args(argv)
    found = sorted([*a.dir.glob("*.txt"), *a.dir.glob("*.prof")])
    if not found:
        print(f"no profiles in {a.dir} (run the benchmarks with --profile {a.dir})")
        return 1
    for prof in found:
        print(f"==== {prof.name}")
        print(summary(prof, a.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
