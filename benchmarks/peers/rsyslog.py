"""rsyslog (Debian's package) as an end-to-end peer: `imfile` -> `mmjsonparse` -> `omelasticsearch`.

It tails the same Docker json-file logs, parses each line's JSON (so `message` is the log text, as
in logship's documents) and bulk-indexes into the same OpenSearch node. rsyslog 8.2302 detects no
OpenSearch version by itself: `esVersion.major="8"` makes it omit the `_type` that OpenSearch 2.x
rejects. Its bulk size and queue are set like logship's aggregator (5 MiB / 5000 docs per bulk).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.procs import Measured, spawn

INDEX = "bench-rsyslog"

CONFIG = """\
global(workDirectory="{work}")
module(load="imfile" mode="inotify")
module(load="mmjsonparse")
module(load="omelasticsearch")
template(name="doc" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="$!time" format="jsonf")
  property(outname="message" name="$!log" format="jsonf")
  property(outname="stream" name="$!stream" format="jsonf")
  property(outname="log.file.path" name="$!metadata!filename" format="jsonf")
}}
ruleset(name="ship" queue.type="linkedlist" queue.size="{queue}" queue.dequeueBatchSize="{batch}") {{
  action(type="mmjsonparse" cookie="")
  action(type="omelasticsearch" server="{host}" serverport="{port}" template="doc"
         searchIndex="{index}" bulkmode="on" maxbytes="{max_bytes}" esVersion.major="8"
         errorFile="{work}/es-errors.json"
         queue.type="linkedlist" queue.size="{queue}" queue.dequeueBatchSize="{batch}"
         action.resumeRetryCount="-1")
}}
input(type="imfile" File="{glob}" Tag="bench" addMetadata="on" ruleset="ship")
"""


def locate() -> tuple[str | None, str | None, str]:
    binary = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if binary is None:
        return None, None, "rsyslog is not installed (apt-get install rsyslog rsyslog-elasticsearch)"
    modules = Path("/usr/lib/x86_64-linux-gnu/rsyslog")
    if not (modules / "omelasticsearch.so").exists() and not list(
        Path("/usr/lib").glob("*/rsyslog/omelasticsearch.so")
    ):
        return None, None, "rsyslog's omelasticsearch module is missing (apt-get install rsyslog-elasticsearch)"
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=30)
    # "rsyslogd  8.2302.0 (aka 2023.02) compiled with:" -> "rsyslogd 8.2302.0"
    words = out.stdout.split()[:2] if out.stdout else ["rsyslogd"]
    version = " ".join(words)
    return binary, version, ""


def start(binary: str, glob: str, opensearch_url: str, workdir: Path, batch: int, max_bytes: int) -> Measured:
    work = workdir / "rsyslog-work"
    work.mkdir(parents=True, exist_ok=True)
    url = urlparse(opensearch_url)
    conf = workdir / "rsyslog.conf"
    conf.write_text(
        CONFIG.format(
            work=work,
            host=url.hostname,
            port=url.port or 9200,
            index=INDEX,
            glob=glob,
            queue=max(100_000, batch * 20),
            batch=batch,
            max_bytes=max_bytes,
        )
    )
    check = subprocess.run([binary, "-N1", "-f", str(conf)], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        raise RuntimeError(f"rsyslogd rejected its config: {check.stderr.strip()[-600:]}")
    return spawn("rsyslogd", [binary, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")], workdir)
