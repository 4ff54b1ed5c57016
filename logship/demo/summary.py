"""What the demo prints: the live progress line and the final summary."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from logship.demo import search
from logship.demo.verify import compare

# metric names as the shipper and aggregator export them (Prometheus counters end in _total)
SHIPPER_SENT = ("logship_shipper_events_sent_total",)
SHIPPER_ACKED = ("logship_shipper_events_acked_total",)
AGGREGATOR_INDEXED = ("logship_aggregator_events_indexed_total",)


def _first(metrics: dict[str, float], names: tuple[str, ...]) -> int | None:
    for n in names:
        if n in metrics:
            return int(metrics[n])
    return None


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


class Progress:
    """One refreshing line on a terminal; a line every 5 s otherwise (CI logs)."""

    def __init__(self, duration: float, index_prefix: str) -> None:
        self.duration = duration
        self.prefix = f"{index_prefix}logstash-logs-"
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.last = 0.0
        self.phase = "running"
        self.line = ""
        self.printed = ""

    def show(
        self, written: int, shipper: dict[str, float], aggregator: dict[str, float], counts: dict[str, int]
    ) -> None:
        elapsed = time.monotonic() - self.t0
        limit = f"/{self.duration:.0f}s" if self.duration > 0 else "s"
        per_index = ", ".join(f"{k.removeprefix(self.prefix)} {v:,}" for k, v in counts.items())
        self.line = (
            f"[{elapsed:4.0f}{limit} {self.phase}] written {written:,} | shipped {_n(_first(shipper, SHIPPER_SENT))}"
            f" | acked {_n(_first(shipper, SHIPPER_ACKED))} | indexed {sum(counts.values()):,}"
            f" ({per_index or 'no index yet'})"
        )
        if self.tty:  # one refreshing line: cut to the terminal's width so it never wraps
            try:
                width = os.get_terminal_size(sys.stderr.fileno()).columns - 1
            except OSError:
                width = 119
            sys.stderr.write("\r\033[K" + (self.line if len(self.line) <= width else self.line[: width - 3] + "..."))
            sys.stderr.flush()
        elif time.monotonic() - self.last >= 5.0:
            self.last = time.monotonic()
            self.printed = self.line
            print(self.line, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
        elif self.line != self.printed:
            print(self.line, file=sys.stderr, flush=True)


def _short(doc: dict[str, Any], limit: int = 400) -> dict[str, Any]:
    out = dict(doc)
    msg = str(out.get("message", ""))
    if len(msg) > limit:
        out["message"] = msg[:limit] + f"... ({len(msg):,} characters)"
    return out


def print_summary(
    url: str, pattern: str, query: dict[str, Any], manifest: dict[str, Any], prefix: str, elapsed: float, kept: bool
) -> bool:
    """Documents per index, a sample of each family, the queries to see them; True if all arrived once."""
    counts = search.counts_per_index(url, pattern, query)
    report = compare(manifest, search.all_documents(url, pattern, query), prefix)
    out = sys.stdout
    print(
        f"\nlogship demo: {manifest['events']:,} events written in {manifest['elapsed_s']:.0f}s; "
        f"{elapsed:.0f}s after the start they are in OpenSearch at {url}\n",
        file=out,
    )
    width = max([len(k) for k in counts] + [5])
    print(f"  {'index':<{width}}  {'documents':>10}", file=out)
    for index, n in counts.items():
        print(f"  {index:<{width}}  {n:>10,}", file=out)
    print(f"  {'total':<{width}}  {sum(counts.values()):>10,}\n", file=out)
    print(f"  check: {report.summary()}\n", file=out)
    for family in ("containers", "app"):
        fam_pattern = f"{prefix}logstash-logs-{family}-*"
        doc = None
        if family == "app":  # prefer an event that shows multi-line joining
            doc = search.sample(
                url, fam_pattern, {"bool": {"filter": [query, {"match_phrase": {"message": "Caused by"}}]}}
            )
        doc = doc or search.sample(url, fam_pattern, query)
        print(f"  a document from {fam_pattern}:", file=out)
        text = json.dumps(_short(doc), indent=2, ensure_ascii=False) if doc else "(none)"
        print("    " + text.replace("\n", "\n    ") + "\n", file=out)
    print("  see them yourself:", file=out)
    print(f"    curl -s '{url}/_cat/indices/{pattern}?v&s=index'", file=out)
    print(
        f"    curl -s '{url}/{prefix}logstash-logs-app-*/_search?q=message:%22Caused%20by%22&size=1&pretty'", file=out
    )
    print(f"    curl -s '{url}/{prefix}logstash-logs-containers-*/_search?q=stream:stderr&size=1&pretty'", file=out)
    if not kept and "9240" in url:
        print(
            "  (the demo stopped the node it started; run with KEEP_OPENSEARCH=1 to keep it for these queries)",
            file=out,
        )
    out.flush()
    return report.ok
