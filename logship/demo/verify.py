"""Compare what reached OpenSearch with the generator's manifest: exactly once, right index, right fields.

Used by the demo's summary and by the end-to-end tests. Each document is matched to its generated
event through the marker `run=R src=S seq=N` in its message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from logship.loggen.content import MARKER_RE

MAX_PROBLEMS = 20


@dataclass
class Report:
    expected: int = 0
    found: int = 0  # documents of this run
    missing: list[tuple[str, int]] = field(default_factory=list)
    duplicates: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: int = 0  # documents without a marker of this run
    problems: list[str] = field(default_factory=list)  # wrong index or fields (first MAX_PROBLEMS)
    problem_count: int = 0
    per_index: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.unexpected or self.problem_count)

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def summary(self) -> str:
        if self.ok:
            return f"all {self.expected} events indexed exactly once, in the right index, with the right fields"
        parts = [f"{self.found} documents for {self.expected} events"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({_ranges(self.missing)})")
        if self.duplicates:
            parts.append(f"{sum(self.duplicates.values())} duplicates (first: {list(self.duplicates)[:5]})")
        if self.unexpected:
            parts.append(f"{self.unexpected} without a marker of this run")
        if self.problem_count:
            parts.append(f"{self.problem_count} with wrong index or fields: " + "; ".join(self.problems[:5]))
        return ", ".join(parts)


def _ranges(keys: list[tuple[str, int]], limit: int = 12) -> str:
    """[('p0c0', 0), ('p0c0', 1), ('p0c0', 2), ('app', 7)] -> 'p0c0 0-2, app 7'."""
    runs: list[tuple[str, int, int]] = []
    for src, seq in sorted(keys):
        if runs and runs[-1][0] == src and runs[-1][2] == seq - 1:
            runs[-1] = (src, runs[-1][1], seq)
        else:
            runs.append((src, seq, seq))
    text = ", ".join(f"{s} {a}" if a == b else f"{s} {a}-{b}" for s, a, b in runs[:limit])
    return text + (f", ... ({len(runs)} runs)" if len(runs) > limit else "")


def _get(doc: dict[str, Any], dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _check_fields(report: Report, doc: dict[str, Any], src: dict[str, Any], key: tuple[str, int], prefix: str) -> None:
    def bad(what: str) -> None:
        report.problem(f"{key[0]}/{key[1]} in {doc.get('_index')}: {what}")

    ts = doc.get("@timestamp")
    if not isinstance(ts, str) or len(ts) < 10:
        bad(f"@timestamp {ts!r}")
        return
    want_index = f"{prefix}logstash-logs-{src['family']}-{ts[:10].replace('-', '.')}"
    if doc.get("_index") != want_index:
        bad(f"expected index {want_index}")
    if src["family"] not in (doc.get("tags") or []):
        bad(f"tags {doc.get('tags')!r} lack {src['family']!r}")
    if not isinstance(_get(doc, "log.offset"), int):
        bad(f"log.offset {_get(doc, 'log.offset')!r}")
    path = _get(doc, "log.file.path")
    if src["kind"] == "container":
        if path not in (src["path"], src["target"]) and not str(path).startswith(src["target"] + "."):
            bad(f"log.file.path {path!r}")
        want = {
            "kubernetes.pod.name": src["kubernetes"]["pod"]["name"],
            "kubernetes.namespace": src["kubernetes"]["namespace"],
            "kubernetes.container.name": src["kubernetes"]["container"]["name"],
            "container.id": src["container"]["id"],
            "container.runtime": src["container"]["runtime"],
        }
        for name, value in want.items():
            if _get(doc, name) != value:
                bad(f"{name} {_get(doc, name)!r} != {value!r}")
        if doc.get("stream") not in ("stdout", "stderr"):
            bad(f"stream {doc.get('stream')!r}")
    else:
        if not str(path).startswith(src["path"].rstrip("/") + "/log-"):
            bad(f"log.file.path {path!r}")
        day = str(path).rsplit("log-", 1)[-1][:10]
        if not str(doc.get("message", "")).startswith(day) or ts[:10] != day:
            bad(f"app event of {day} has @timestamp {ts}")


def compare(manifest: dict[str, Any], docs: Iterable[dict[str, Any]], index_prefix: str = "") -> Report:
    """Match documents to the manifest's events; checks fields of the first copy of each event."""
    sources = {s["id"]: s for s in manifest["sources"]}
    report = Report(expected=sum(s["events"] for s in sources.values()))
    seen: set[tuple[str, int]] = set()
    run = manifest["run"]
    for doc in docs:
        report.found += 1
        report.per_index[str(doc.get("_index"))] += 1
        match = MARKER_RE.search(str(doc.get("message", "")))
        if match is None or match.group(1) != run or match.group(2) not in sources:
            report.unexpected += 1
            continue
        key = (match.group(2), int(match.group(3)))
        if key in seen:
            report.duplicates[key] += 1
            continue
        seen.add(key)
        src = sources[key[0]]
        if key[1] >= src["events"]:
            report.unexpected += 1
            continue
        _check_fields(report, doc, src, key, index_prefix)
    for sid, src in sources.items():
        for seq in range(src["events"]):
            if (sid, seq) not in seen:
                report.missing.append((sid, seq))
    return report
