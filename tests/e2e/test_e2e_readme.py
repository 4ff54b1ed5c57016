"""README's "Run it on a node" block, run as written: in a network namespace of its own (so its fixed
ports 5044, 5066, 9600 and 9240 never meet another process on this machine) with its own OpenSearch
instance directory (so `--name demo` never touches someone's `make demo` node)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def readme_block(title: str) -> str:
    section = README.read_text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"expected one sh block under '## {title}'"
    return blocks[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root (CI runs as root)")
def test_run_it_on_a_node_block_runs_as_written() -> None:
    block = readme_block("Run it on a node")
    assert block.startswith(". .venv/bin/activate")
    # not under pytest's tmp_path: its root is 0700, and the node runs as an unprivileged user
    instances = Path(tempfile.mkdtemp(prefix="logship-readme-"))
    instances.chmod(0o711)
    paths = [Path("/tmp/logship-node"), Path("/tmp/logship-data"), instances]
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "LOGSHIP_"))}
    env["LOGSHIP_OS_INSTANCES"] = str(instances)
    script = "set -euo pipefail\nip link set lo up\n" + block
    try:
        proc = subprocess.run(
            ["unshare", "--net", "bash", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=480,
        )
    finally:
        subprocess.run(
            [str(ROOT / "scripts" / "opensearch.sh"), "stop", "--name", "demo"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        for p in paths:
            shutil.rmtree(p, ignore_errors=True)
    out = proc.stdout
    assert proc.returncode == 0, f"stdout:\n{out[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert re.search(r"^logship \d+\.\d+\.\d+", out, re.M)
    assert "deploy/local/shipper.yml: shipper: config OK" in out
    assert "connection... OK: opensearch 2.19" in out
    acked = re.search(r"^logship_shipper_events_acked_total (\S+)", out, re.M)
    assert acked and float(acked.group(1)) > 0, out
    counts = dict(re.findall(r"^(logstash-logs-(?:containers|app)-\S+)\s+(\d+)", out, re.M))
    assert any("containers" in k for k in counts) and any("-app-" in k for k in counts), out
    assert all(int(n) > 0 for n in counts.values()), out
    # every event acknowledged by then is searchable after the block's refresh
    assert sum(int(n) for n in counts.values()) >= float(acked.group(1)), out
