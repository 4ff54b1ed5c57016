"""The suite runner: `python -m benchmarks --mode smoke|quick|full`.

Starts (or reuses) a private OpenSearch node, runs cases a-e with the peers that are available,
prints progress and the targets, and writes `<out>/<timestamp>.json` and `<out>/<timestamp>/*.png`.
Exit status 1 if any case failed (a target being short is a figure, not a failure).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import conditions, plots, report
from benchmarks.cases import a_shipper, b_aggregator, c_pipeline, d_latency, e_outage, f_cluster, g_growth
from benchmarks.cases.common import Context, Peers
from benchmarks.node import BenchNode, NodeError
from benchmarks.peers import filebeat, fluentbit, rsyslog
from benchmarks.procs import ROOT, py_spy
from benchmarks.profiles import PROFILES, Profile

CASES: dict[str, tuple[str, Callable[[Context], dict[str, Any]], bool]] = {
    # name: (what, runner, needs the OpenSearch node)
    "a": ("shipper -> blackhole", a_shipper.run, False),
    "b": ("protocol client -> aggregator -> blackhole", b_aggregator.run, False),
    "c": ("files -> shipper -> aggregator -> OpenSearch, and the ceiling", c_pipeline.run, True),
    "d": ("latency written -> searchable", d_latency.run, True),
    "e": ("OpenSearch outage: memory and drain", e_outage.run, True),
    # not in the default set: it starts a 3-node cluster of its own (`--cases f`)
    "f": ("files -> shipper -> 1/2/3 aggregators -> 3-node cluster, and its ceiling", f_cluster.run, False),
    # not in the default set either (`--cases g`): its full sweep takes longer than the full run's budget
    "g": ("how cost grows: files, line size, connections", g_growth.run, False),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument(
        "--mode", choices=sorted(PROFILES), default="quick", help="smoke: seconds; quick: <= 2 min; full: <= 20 min"
    )
    p.add_argument("--cases", default="abcde", help="which cases to run, e.g. 'ab' (default abcde)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where results go")
    p.add_argument(
        "--node-name",
        default=os.environ.get("LOGSHIP_BENCH_NODE_NAME", "bench"),
        help="OpenSearch instance name (scripts/opensearch.sh --name; env LOGSHIP_BENCH_NODE_NAME)",
    )
    p.add_argument("--node-port", type=int, default=int(os.environ.get("LOGSHIP_BENCH_NODE_PORT", "9230")))
    p.add_argument("--node-heap", default="1g")
    p.add_argument("--keep-node", action="store_true", help="leave a node this run started running afterwards")
    p.add_argument(
        "--peers",
        choices=["auto", "none", "build"],
        default="auto",
        help="auto: compare with Filebeat/Fluent Bit/rsyslog if present; build: build Filebeat/Fluent Bit if missing",
    )
    p.add_argument("--workdir", type=Path, help="scratch directory (default: a temp dir, removed afterwards)")
    p.add_argument("--profile", type=Path, metavar="DIR", help="profile shipper/aggregator, profiles in DIR")
    p.add_argument(
        "--profiler",
        choices=("sample", "cprofile"),
        default="sample",
        help="with --profile: sample = py-spy from outside (the process runs at its own speed); "
        "cprofile = under cProfile (call counts, slower). Summarise: python -m benchmarks.profiling DIR",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of the mode (see benchmarks/profiles.py), e.g. --set max_pending_windows=16",
    )
    p.add_argument("--note", default="", help="free text stored with the results (e.g. what else ran)")
    return p.parse_args(argv)


def with_overrides(profile: Profile, pairs: list[str]) -> Profile:
    """The profile with `KEY=VALUE` settings replaced (numbers, booleans, or comma-separated tuples)."""
    changes: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(profile)}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in known or key in ("name", "extra"):
            raise SystemExit(f"--set {pair}: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}")
        current = getattr(profile, key)
        try:
            if isinstance(current, tuple):
                changes[key] = tuple(int(x) for x in text.split(",") if x)  # "" = empty
            elif isinstance(current, bool):
                changes[key] = text.lower() in ("1", "true", "yes")
            else:
                changes[key] = type(current)(text)
        except ValueError:
            raise SystemExit(f"--set {pair}: {text!r} is not a valid {type(current).__name__}") from None
    return dataclasses.replace(profile, **changes) if changes else profile


def find_peers(mode: str, ctx_say: Callable[[str], None]) -> Peers:
    peers = Peers()
    if mode == "none":
        peers.filebeat_reason = peers.filebeat9_reason = "peers disabled (--peers none)"
        peers.rsyslog_reason = peers.fluentbit_reason = "peers disabled (--peers none)"
        return peers
    peers.filebeat, peers.filebeat_version, peers.filebeat_reason = filebeat.locate(build=mode == "build")
    peers.filebeat9, peers.filebeat9_version, peers.filebeat9_reason = filebeat.locate(
        build=mode == "build", version=filebeat.VERSION9
    )
    peers.rsyslogd, peers.rsyslog_version, peers.rsyslog_reason = rsyslog.locate()
    peers.fluentbit, peers.fluentbit_version, peers.fluentbit_reason = fluentbit.locate(build=mode == "build")
    for name, ok, why in (
        ("filebeat", peers.filebeat, peers.filebeat_reason),
        ("filebeat 9", peers.filebeat9, peers.filebeat9_reason),
        ("fluent-bit", peers.fluentbit, peers.fluentbit_reason),
        ("rsyslog", peers.rsyslogd, peers.rsyslog_reason),
    ):
        ctx_say(f"peer {name}: {'found ' + str(ok) if ok else 'not used: ' + why}")
    return peers


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (and SIGINT even when started in the background, where it is ignored) unwind through
    # every `finally`, so the processes under test and a node this run started are always stopped
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    profile = with_overrides(PROFILES[args.mode], args.set)
    if args.profile and args.profiler == "sample" and py_spy() is None:
        raise SystemExit("--profile: py-spy is not installed (pip install py-spy; `make setup` installs it), "
                         "or use --profiler cprofile")  # fmt: skip
    wanted = [c for c in args.cases if c in CASES]
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="logship-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def say(msg: str) -> None:
        sys.stderr.write(f"[{time.monotonic() - t0:6.1f}s] {msg}\n")
        sys.stderr.flush()

    say(f"logship benchmarks, {args.mode} mode, cases {''.join(wanted)}; scratch {work}")
    peers = find_peers("none" if not profile.peers else args.peers, say)
    node: BenchNode | None = None
    results: dict[str, Any] = {
        "schema": 1,
        "mode": args.mode,
        "command": " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]),
        "started_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": conditions.machine(),
        "versions": conditions.versions(),
        "settings": profile.settings(),
        "note": args.note,
        "peers": {
            "filebeat": peers.filebeat_version or f"not measured: {peers.filebeat_reason}",
            "filebeat9": peers.filebeat9_version or f"not measured: {peers.filebeat9_reason}",
            "rsyslog": peers.rsyslog_version or f"not measured: {peers.rsyslog_reason}",
            "fluentbit": peers.fluentbit_version or f"not measured: {peers.fluentbit_reason}",
        },
        "cases": {},
    }
    results["versions"]["filebeat"] = peers.filebeat_version
    results["versions"]["filebeat9"] = peers.filebeat9_version
    results["versions"]["rsyslog"] = peers.rsyslog_version
    results["versions"]["fluentbit"] = peers.fluentbit_version
    failed = False
    try:
        if any(CASES[c][2] for c in wanted):
            node = BenchNode(args.node_name, args.node_port, args.node_heap)
            say(f"OpenSearch node '{node.name}' on port {node.port} (started once, reused afterwards)")
            node.start()
            results["versions"]["opensearch"] = node.version()
            say(f"OpenSearch {results['versions']['opensearch']} ready at {node.url}")
        say("measuring how busy the machine is with other work (1 s)")
        results["machine"]["other_load"] = conditions.other_load_note({os.getpid()})
        ctx = Context(profile, work, node, peers, t_start=t0, profile_dir=args.profile, profiler=args.profiler)
        if args.profile:
            how = "sampled by py-spy" if args.profiler == "sample" else "under cProfile"
            say(f"profiling shipper and aggregator into {args.profile} ({how}): figures may be slower than without")
            results["note"] = (results["note"] + f" [shipper and aggregator {how}: not representative]").strip()
        for name in wanted:
            what, fn, _ = CASES[name]
            say(f"case {name}: {what}")
            t_case = time.monotonic()
            load_before = [round(x, 2) for x in os.getloadavg()]
            reference_before, steal_before = conditions.reference_us(), conditions.steal_seconds()
            try:
                results["cases"][name] = fn(ctx)
            except Exception as exc:
                failed = True
                say(f"case {name} FAILED: {exc}")
                results["cases"][name] = {"error": str(exc), "traceback": traceback.format_exc()[-4000:]}
            results["cases"][name]["case_seconds"] = round(time.monotonic() - t_case, 1)
            # 1/5/15-minute load averages around the case: others' work on the shared cores shows here
            results["cases"][name]["load_average"] = {
                "before": load_before,
                "after": [round(x, 2) for x in os.getloadavg()],
            }
            # how fast the host was around the case, to compare absolute figures between runs
            elapsed = max(time.monotonic() - t_case, 1e-6)
            results["cases"][name]["host"] = {
                "reference_us": [reference_before, conditions.reference_us()],
                "steal_share": round(
                    (conditions.steal_seconds() - steal_before) / (elapsed * (os.cpu_count() or 1)), 4
                ),
            }
    finally:
        if node is not None and not args.keep_node:
            node.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    results["duration_s"] = round(time.monotonic() - t0, 1)
    results["targets"] = report.targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}.json"
    pngs = plots.draw(results, args.out / stamp)
    results["plots"] = [str(p.relative_to(args.out)) for p in pngs]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    print("\n".join(report.summary_lines(results)))
    print(f"\nresults: {path}\nplots:   {', '.join(str(p) for p in pngs) or 'none'}")
    say(f"done in {results['duration_s']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NodeError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        sys.exit(2)
