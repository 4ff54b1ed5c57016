"""A real Filebeat (built from the Go module proxy by build_filebeat.sh) as a peer of the shipper.

It reads the same files with its `container` input and sends with its Logstash output (Lumberjack
v2) to the same receiver as the shipper: the blackhole (case a) or our aggregator (case c).
`max_procs: 1` holds it to one core, like the single-threaded shipper.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from benchmarks.procs import ROOT, Measured, spawn

if TYPE_CHECKING:
    from benchmarks.cases.common import Context

BUILD_SCRIPT = ROOT / "benchmarks" / "peers" / "build_filebeat.sh"
VERSION = os.environ.get("FILEBEAT_VERSION", "v7.17.29")
TOOLS = Path(os.environ.get("LOGSHIP_TOOLS", "/var/cache/logship/tools"))


def locate(build: bool) -> tuple[str | None, str | None, str]:
    """(binary, version text, reason when unavailable). Builds it first when `build` is true."""
    binary = TOOLS / f"filebeat-{VERSION.lstrip('v')}"
    if not binary.exists():
        if not build:
            return (
                None,
                None,
                (
                    f"Filebeat {VERSION} is not built at {binary}; run benchmarks/peers/build_filebeat.sh "
                    "(a Go build from the module proxy, several minutes on 2 cores) or pass --peers build"
                ),
            )
        if shutil.which("go") is None:
            return None, None, "Filebeat cannot be built here: no Go toolchain on PATH"
        out = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            return None, None, f"building Filebeat {VERSION} failed: {out.stderr.strip()[-800:]}"
    try:
        text = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, None, f"Filebeat binary {binary} does not run: {exc}"
    # "filebeat version 7.17.29 (amd64), libbeat 7.17.29 [...]" -> "filebeat 7.17.29"
    words = text.split()
    version = f"filebeat {words[2]}" if len(words) > 2 and words[1] == "version" else text
    return str(binary), version, ""


def config(glob: str, host: str, data: Path, compression: int, window: int) -> dict[str, Any]:
    return {
        "max_procs": 1,
        "filebeat.inputs": [{"type": "container", "paths": [glob], "stream": "all"}],
        "queue.mem": {"events": window * 4, "flush.min_events": window, "flush.timeout": "1s"},
        "output.logstash": {
            "hosts": [host],
            "compression_level": compression,
            "bulk_max_size": window,
            "pipelining": 2,
            "ttl": 0,
        },
        "path.data": str(data),
        "path.logs": str(data / "logs"),
        "logging.level": "warning",
        "logging.to_stderr": True,
        "http.enabled": False,
        "monitoring.enabled": False,
    }


def start(ctx: Context, glob: str, host: str, workdir: Path, compression: int, cpu: str | None = None) -> Measured:
    assert ctx.peers.filebeat is not None
    data = workdir / "filebeat-data"
    data.mkdir(parents=True, exist_ok=True)
    cfg_path = workdir / "filebeat.yml"
    cfg = config(glob, host, data, compression, ctx.profile.window_size)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    argv = [ctx.peers.filebeat, "-e", "--strict.perms=false", "-c", str(cfg_path), "--path.home", str(data)]
    return spawn("filebeat", argv, workdir, cpu=cpu)
