"""Summaries of the cProfile files a `--profile DIR` run left behind.

python -m benchmarks.profiling DIR [--top 25]
"""

from __future__ import annotations

import argparse
import io
import pstats
from pathlib import Path


def summary(path: Path, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    p.add_argument("dir", type=Path)
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args(argv)
    for prof in sorted(a.dir.glob("*.prof")):
        print(f"==== {prof.name}")
        print(summary(prof, a.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
