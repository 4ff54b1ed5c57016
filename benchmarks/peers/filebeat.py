"""A real Filebeat (built from the Go module proxy by build_filebeat.sh) as a peer of the shipper.

It reads the same files and sends with its Logstash output (Lumberjack v2) to the same receiver as
the shipper: the blackhole (case a) or our aggregator (case c). `max_procs: 1` holds it to one core,
like the single-threaded shipper. Two versions run side by side where both are built: 7.17 (agent
`filebeat`, the `container` input most clusters still run) and 9.3 (agent `filebeat9`, `filestream`
with the container parser, as Elastic's Kubernetes manifest configures it).
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
VERSION9 = os.environ.get("FILEBEAT9_VERSION", "v9.3.0")
AGENTS = ("filebeat", "filebeat9")  # agent names in the results: 7.17 and 9.3
TOOLS = Path(os.environ.get("LOGSHIP_TOOLS", "/var/cache/logship/tools"))


def locate(build: bool, version: str = VERSION) -> tuple[str | None, str | None, str]:
    """(binary, version text, reason when unavailable). Builds it first when `build` is true."""
    binary = TOOLS / f"filebeat-{version.lstrip('v')}"
    if not binary.exists():
        if not build:
            return (
                None,
                None,
                (
                    f"Filebeat {version} is not built at {binary}; run FILEBEAT_VERSION={version} "
                    "benchmarks/peers/build_filebeat.sh (a Go build from the module proxy, several minutes "
                    "on 2 cores) or pass --peers build"
                ),
            )
        if shutil.which("go") is None:
            return None, None, "Filebeat cannot be built here: no Go toolchain on PATH"
        env = {**os.environ, "FILEBEAT_VERSION": version}
        out = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600, env=env)
        if out.returncode != 0:
            return None, None, f"building Filebeat {version} failed: {out.stderr.strip()[-800:]}"
    try:
        text = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, None, f"Filebeat binary {binary} does not run: {exc}"
    # "filebeat version 7.17.29 (amd64), libbeat 7.17.29 [...]" -> "filebeat 7.17.29"
    words = text.split()
    version = f"filebeat {words[2]}" if len(words) > 2 and words[1] == "version" else text
    return str(binary), version, ""


def config(glob: str, host: str, data: Path, compression: int, window: int, agent: str = "filebeat") -> dict[str, Any]:
    if agent == "filebeat":
        filebeat_input: dict[str, Any] = {"type": "container", "paths": [glob], "stream": "all"}
    else:  # 9.x: the container input is deprecated; Elastic's manifest uses filestream + container parser
        filebeat_input = {
            "type": "filestream",
            "id": "kubernetes-container-logs",
            "paths": [glob],
            "parsers": [{"container": {"stream": "all"}}],
            "prospector.scanner.symlinks": True,  # /var/log/containers/*.log are symlinks, as in the manifest
        }
    return {
        "max_procs": 1,
        "filebeat.inputs": [filebeat_input],
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


def start(
    ctx: Context,
    glob: str,
    host: str,
    workdir: Path,
    compression: int,
    cpu: str | None = None,
    agent: str = "filebeat",
) -> Measured:
    binary = ctx.peers.filebeat if agent == "filebeat" else ctx.peers.filebeat9
    assert binary is not None
    data = workdir / f"{agent}-data"
    data.mkdir(parents=True, exist_ok=True)
    cfg_path = workdir / f"{agent}.yml"
    cfg = config(glob, host, data, compression, ctx.profile.window_size, agent)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    argv = [binary, "-e", "--strict.perms=false", "-c", str(cfg_path), "--path.home", str(data)]
    return spawn(agent, argv, workdir, cpu=cpu)
