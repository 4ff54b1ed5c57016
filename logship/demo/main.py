"""`make demo`: logs flow from generated files through a shipper and an aggregator into OpenSearch.

Starts (or reuses) a local OpenSearch, an aggregator and a shipper as real processes with the configs
of `deploy/local/`, and the log generator writing an EKS-node-shaped tree: Docker json-file and CRI
containers (with 16 KiB splits and partial lines, kubelet rotation) and an app log with Java stack
traces over two days. Shows live progress, then a summary. Stops everything it started on exit,
Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from logship.demo import search
from logship.demo.node import SCRIPT, DemoNode
from logship.demo.pipeline import LOCAL_CONFIGS, Service, ServiceError, free_port, local_env
from logship.demo.summary import Progress, print_summary
from logship.loggen import GenConfig, Generator


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise SystemExit(f"demo: {name}={value!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m logship.demo", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument(
        "--duration",
        type=float,
        default=_env_float("DURATION", 30),
        help="seconds of log writing (env DURATION, default 30; 0 = until Ctrl-C)",
    )
    p.add_argument(
        "--rate", type=float, default=_env_float("RATE", 300), help="events per second (env RATE, default 300)"
    )
    p.add_argument(
        "--pods", type=int, default=int(_env_float("PODS", 6)), help="pods on the fake node (env PODS, default 6)"
    )
    p.add_argument(
        "--opensearch-url",
        default=os.environ.get("OPENSEARCH_URL"),
        help="use this node instead of starting one (env OPENSEARCH_URL)",
    )
    p.add_argument(
        "--name",
        default=os.environ.get("DEMO_OPENSEARCH_NAME", "demo"),
        help="scripts/opensearch.sh instance name (default demo)",
    )
    p.add_argument(
        "--port", type=int, default=int(_env_float("DEMO_OPENSEARCH_PORT", 9240)), help="its port (default 9240)"
    )
    p.add_argument(
        "--index-prefix",
        default=os.environ.get("INDEX_PREFIX", ""),
        help="put in front of every index name (env INDEX_PREFIX)",
    )
    p.add_argument(
        "--keep-opensearch",
        action="store_true",
        default=bool(os.environ.get("KEEP_OPENSEARCH")),
        help="leave a node the demo started running (env KEEP_OPENSEARCH=1)",
    )
    p.add_argument(
        "--keep", action="store_true", default=bool(os.environ.get("KEEP")), help="keep the work directory (env KEEP=1)"
    )
    p.add_argument(
        "--drain-timeout", type=float, default=60.0, help="seconds to wait for the last events after writing stops"
    )
    p.add_argument("--seed", type=int, default=int(_env_float("SEED", 1)))
    return p  # fmt: skip


class _Stop:
    """First Ctrl-C/SIGTERM: finish gracefully (drain, summary). Second: stop now."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            self._previous[s] = signal.signal(s, self._handle)

    def restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)

    def shielded(self) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._cleaning)

    @staticmethod
    def _cleaning(signum: int, frame: FrameType | None) -> None:
        print("\ndemo: stopping what it started, one moment", file=sys.stderr)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        print("\ndemo: stopping (press Ctrl-C again to skip waiting for the last events)", file=sys.stderr)


def _sleep(stop: threading.Event, seconds: float) -> None:
    stop.wait(seconds)


def run(args: argparse.Namespace) -> int:
    stop = _Stop()
    stop.install()
    work = Path(tempfile.mkdtemp(prefix="logship-demo-"))
    node = DemoNode(args.name, args.port, args.opensearch_url)
    services: list[Service] = []
    gen_stop = threading.Event()
    gen_thread: threading.Thread | None = None
    failed = True
    try:
        url = node.ensure(stop.event)
        if stop.event.is_set():
            return 130
        root, data = work / "node", work / "data"
        root.mkdir()
        data.mkdir()
        # the usual ports when free (LOGSHIP_PORT etc. override them; 0 = any free port)
        env = local_env(
            root=root, data=data, opensearch_url=url, index_prefix=args.index_prefix,
            lumberjack_port=free_port(int(_env_float("LOGSHIP_PORT", 5044))),
            shipper_http_port=free_port(int(_env_float("SHIPPER_HTTP_PORT", 5066))),
            aggregator_http_port=free_port(int(_env_float("AGGREGATOR_HTTP_PORT", 9600))),
        )  # fmt: skip
        aggregator = Service(
            "aggregator",
            LOCAL_CONFIGS / "aggregator.yml",
            env,
            int(env["AGGREGATOR_HTTP_PORT"]),
            work / "logs/aggregator.log",
        )
        shipper = Service(
            "shipper", LOCAL_CONFIGS / "shipper.yml", env, int(env["SHIPPER_HTTP_PORT"]), work / "logs/shipper.log"
        )
        print(f"demo: work directory {work}", file=sys.stderr)
        print(
            f"demo: starting the aggregator (lumberjack :{env['LOGSHIP_PORT']}, metrics {aggregator.base_url}/metrics)",
            file=sys.stderr,
        )
        services.append(aggregator)
        aggregator.start()
        aggregator.wait_ready(90)
        print(f"demo: starting the shipper (metrics {shipper.base_url}/metrics) and the log generator", file=sys.stderr)

        gen = Generator(
            GenConfig(
                root=root, rate=args.rate, pods=args.pods, format="mixed", long_ratio=0.01, long_bytes=40_000,
                app_share=0.2, app_days=2, app_backlog=50, stack_ratio=0.15, rotate="kubelet",
                rotate_bytes=512 * 1024, seed=args.seed, run_id=uuid.uuid4().hex[:8],
            )
        )  # fmt: skip
        result: dict[str, Any] = {}

        def generate() -> None:
            result["manifest"] = gen.run(stop=gen_stop)

        gen_thread = threading.Thread(target=generate, name="loggen", daemon=True)
        gen_thread.start()
        services.append(shipper)
        shipper.start()
        shipper.wait_ready(60)

        pattern = f"{args.index_prefix}logstash-logs-*"
        query = search.path_filter(str(root))
        progress = Progress(args.duration, args.index_prefix)
        t0 = time.monotonic()
        while not stop.event.is_set() and (args.duration <= 0 or time.monotonic() - t0 < args.duration):
            for s in services:
                s.check_alive()
            shipped, indexed = shipper.metrics(), aggregator.metrics()
            counts = search.counts_per_index(url, pattern, query)
            progress.show(gen.stats.events, shipped, indexed, counts)  # written read last: never below shipped
            _sleep(stop.event, 1.0)
        gen_stop.set()
        gen_thread.join(30)
        manifest = result["manifest"]
        written = int(manifest["events"])
        progress.phase = "draining"
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            counts = search.counts_per_index(url, pattern, query)
            progress.show(written, shipper.metrics(), aggregator.metrics(), counts)
            if sum(counts.values()) >= written:
                break
            for s in services:
                s.check_alive()
            _sleep(threading.Event(), 1.0)
        progress.done()
        shipper.stop()
        aggregator.stop()
        search.refresh(url, pattern)
        ok = print_summary(
            url,
            pattern,
            query,
            manifest,
            args.index_prefix,
            elapsed=time.monotonic() - t0,
            kept=node.started and args.keep_opensearch,
        )
        failed = not ok
        return 0 if ok else 1
    except ServiceError as exc:
        print(f"\ndemo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, search.SearchError, OSError) as exc:
        print(f"\ndemo: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.shielded()  # from here on Ctrl-C must not interrupt the clean-up
        gen_stop.set()
        if gen_thread is not None:
            gen_thread.join(30)
        for s in reversed(services):  # shipper first: it flushes to a still-running aggregator
            if s.proc is not None and s.proc.poll() is None:
                print(f"demo: stopping the {s.side}", file=sys.stderr)
            s.stop(timeout=15)
        if not args.keep_opensearch:
            node.stop()
        elif node.started:
            print(
                f"demo: OpenSearch left running at {node.url}; "
                f"stop it with scripts/opensearch.sh stop --name {node.name}",
                file=sys.stderr,
            )
        if args.keep or (failed and services):  # a failed run keeps its process logs for a look
            print(f"demo: logs and data kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
        stop.restore()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = [p for p in (LOCAL_CONFIGS / "aggregator.yml", LOCAL_CONFIGS / "shipper.yml", SCRIPT) if not p.is_file()]
    if missing:
        # The demo drives deploy/local/*.yml and scripts/opensearch.sh, which a wheel does not contain.
        print(
            f"logship demo: needs a source checkout ({missing[0]} not found); "
            "run `make demo` in a clone of the repository",
            file=sys.stderr,
        )
        return 2
    return run(args)
