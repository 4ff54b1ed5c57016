"""Fluent Bit (built from the shared source tarball by build_fluentbit.sh) as a peer of the shipper.

It tails the same files with its `tail` input and the `docker, cri` multiline parsers (the
configuration EKS clusters run: each line's JSON or CRI header decoded, partial lines joined), then
either drops the records (`null`, case a) or bulk-indexes them (`opensearch`: case c, and case a into
a blackhole `_bulk` server, plain or gzip). Progress comes from its own HTTP server
(`/api/v1/metrics`): records the input read and the output handled.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import orjson

from benchmarks.procs import ROOT, Measured, free_port, spawn

if TYPE_CHECKING:
    from benchmarks.cases.common import Context

VERSION = os.environ.get("FLUENTBIT_VERSION", "5.1.1")
TOOLS = Path(os.environ.get("LOGSHIP_TOOLS", "/var/cache/logship/tools"))
# the source tarball and its build script live outside the repository (not on any registry here)
SHARED = Path(os.environ.get("LOGSHIP_FLUENTBIT_SRC", str(ROOT.parent / "shared" / "peers" / "fluent-bit")))
BUILD_SCRIPT = ROOT / "benchmarks" / "peers" / "build_fluentbit.sh"
INDEX = "bench-fluentbit"
# `Compress gzip` deflates each request body at zlib's default level (Z_DEFAULT_COMPRESSION in its
# flb_gzip.c); Fluent Bit has no setting for the level
GZIP_LEVEL = 6


def binary_path() -> Path:
    return TOOLS / f"fluent-bit-{VERSION}" / "bin" / "fluent-bit"


def locate(build: bool) -> tuple[str | None, str | None, str]:
    """(binary, version text, reason when unavailable). Builds it first when `build` is true."""
    binary = binary_path()
    if not binary.exists():
        if not (SHARED / "build.sh").exists():
            return (
                None,
                None,
                f"Fluent Bit {VERSION} is not built at {binary} and its source folder {SHARED} is missing",
            )
        if not build:
            return None, None, f"Fluent Bit {VERSION} is not built at {binary}; run `make bench-peers` or --peers build"
        out = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600)
        if out.returncode != 0 or not binary.exists():
            return None, None, f"building Fluent Bit {VERSION} failed: {out.stderr.strip()[-800:]}"
    try:
        text = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, None, f"Fluent Bit binary {binary} does not run: {exc}"
    # "Fluent Bit v5.1.1" (first line) -> "fluent-bit 5.1.1"
    first = text.strip().splitlines()[0] if text.strip() else ""
    version = f"fluent-bit {first.split()[-1].lstrip('v')}" if first.startswith("Fluent Bit") else first
    return str(binary), version or f"fluent-bit {VERSION}", ""


SERVICE = """\
[SERVICE]
    Flush        {flush}
    Log_Level    warn
    Daemon       off
    HTTP_Server  on
    HTTP_Listen  127.0.0.1
    HTTP_Port    {http_port}

[INPUT]
    Name              tail
    Path              {glob}
    multiline.parser  docker, cri
    Tag               kube.*
    Read_from_Head    true
    Refresh_Interval  1
    Skip_Long_Lines   On
    DB                {work}/tail.db
"""

NULL_OUTPUT = """
[OUTPUT]
    Name   null
    Match  *
"""

OPENSEARCH_OUTPUT = """
[OUTPUT]
    Name                opensearch
    Match               *
    Host                {host}
    Port                {port}
    Index               {index}
    Suppress_Type_Name  On
    Generate_ID         On
    Replace_Dots        On
    Retry_Limit         False
    Buffer_Size         False
    Workers             {workers}
{compress}"""


def start(
    ctx: Context,
    glob: str,
    workdir: Path,
    opensearch_url: str | None = None,
    cpu: str | None = None,
    flush: float = 1.0,
    mem_buf_limit: str | None = None,
    gzip: bool = False,
) -> tuple[Measured, int]:
    """Fluent Bit reading `glob` into `null`, or into OpenSearch at `opensearch_url`; (process, HTTP port).

    `flush` 1 s is Fluent Bit's default (and its Helm chart's); a shorter one holds fewer records in
    memory, so it lowers Fluent Bit's RSS.

    Into OpenSearch, `Workers` = the aggregator's bulk concurrency, so as many bulk requests are in
    flight. Fluent Bit sends one chunk (up to about 2 MiB of records) per request and has no setting
    for documents per bulk; that is about 5,000 documents of 256-byte lines, as the aggregator's bulks."""
    assert ctx.peers.fluentbit is not None
    work = workdir / "fluentbit"
    work.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    text = SERVICE.format(flush=flush, http_port=http_port, glob=glob, work=work)
    if mem_buf_limit:  # the tail input pauses once this much is buffered (the Helm chart sets 5MB)
        text += f"    Mem_Buf_Limit     {mem_buf_limit}\n"
    if opensearch_url is None:
        text += NULL_OUTPUT
    else:
        url = urlparse(opensearch_url)
        text += OPENSEARCH_OUTPUT.format(
            host=url.hostname,
            port=url.port or 9200,
            index=INDEX,
            workers=ctx.profile.bulk_concurrency,
            compress="    Compress            gzip\n" if gzip else "",
        )
    conf = workdir / "fluent-bit.conf"
    conf.write_text(text)
    return spawn("fluent-bit", [ctx.peers.fluentbit, "-c", str(conf)], workdir, cpu=cpu), http_port


def metrics(http_port: int) -> dict[str, int] | None:
    """{"in": records the tail input read, "out": records its output handled}; None if unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/v1/metrics", timeout=2) as resp:
            data = orjson.loads(resp.read())
    except (OSError, ValueError):
        return None
    read = sum(int(v.get("records", 0)) for v in data.get("input", {}).values())
    handled = sum(int(v.get("proc_records", 0)) for v in data.get("output", {}).values())
    return {"in": read, "out": handled}


class RecordCounter:
    """Polls Fluent Bit's metrics every 100 ms, with the interface of the blackhole sinks: `events`
    (records the output handled), `first`/`last` (wall clock of the first and the latest record the
    input read, so the clock runs over the reading as the shipper's does over the receiving).

    Fluent Bit may read a small set before its HTTP server first answers: then the clock starts at
    `started` (when the process was started, so its start-up counts against it) and `from_start` is
    set, rather than at the first answer, which would leave the reading out."""

    def __init__(self, http_port: int, started: float | None = None) -> None:
        self.port = http_port
        self.started = started
        self.from_start = False
        self.events = 0
        self.read = 0
        self.first = 0.0
        self.last = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        answered_empty = False  # an answer with nothing read yet came first
        while not self._stop.is_set():
            m = metrics(self.port)
            now = time.time()
            if m is not None:
                if not m["in"]:
                    answered_empty = True
                elif not self.first:
                    # records already read at its first answer: the reading began before it
                    self.from_start = not answered_empty and self.started is not None
                    self.first = self.started if self.from_start and self.started else now
                if m["in"] > self.read:
                    self.read, self.last = m["in"], now
                self.events = m["out"]
            self._stop.wait(0.1)

    def wait_events(self, n: int, timeout: float, progress: Callable[[int], None] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.events >= n:
                return True
            if progress is not None:
                progress(self.events)
            time.sleep(0.1)
        return self.events >= n

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join(2)
