"""The same container log files shipped by a real Filebeat 9.3 and by the logship shipper, through the
logship aggregator into OpenSearch: the documents are compared field by field.

Every difference found must be listed in docs/migrate-from-filebeat-logstash.md ("Remaining
differences"), and every difference listed there must still occur, so the guide stays exact. The
Filebeat binary is built from the Go module proxy by benchmarks/peers/build_filebeat.sh (cached in
/var/cache/logship/tools; the first build takes a long while on 2 cores).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.e2e.conftest import Pipeline

VERSION = os.environ.get("FILEBEAT9_VERSION", "v9.3.0")
TOOLS = Path(os.environ.get("LOGSHIP_TOOLS", "/var/cache/logship/tools"))
FILEBEAT = Path(os.environ.get("FILEBEAT9_BIN", str(TOOLS / f"filebeat-{VERSION.lstrip('v')}")))
ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "benchmarks" / "peers" / "build_filebeat.sh"
GUIDE = ROOT / "docs" / "migrate-from-filebeat-logstash.md"

CID = "0123456789abcdef" * 4
DOCKER_FILE = f"web-7d4b9_shop_nginx-{CID}.log"
CRI_FILE = f"api-5c6f7_shop_app-{CID[::-1]}.log"
LINES = 40


@pytest.fixture(scope="module")
def filebeat() -> Path:
    if not FILEBEAT.is_file():
        env = {**os.environ, "FILEBEAT_VERSION": VERSION, "LOGSHIP_TOOLS": str(TOOLS)}
        env["PATH"] = f"/usr/local/go/bin:{env.get('PATH', '')}"
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, env=env, timeout=3600)
        if proc.returncode != 0 or not FILEBEAT.is_file():
            pytest.fail(f"could not build Filebeat {VERSION} with {BUILD_SCRIPT}:\n{proc.stderr[-3000:]}")
    return FILEBEAT


def write_logs(root: Path) -> Path:
    """A Docker json-file and a CRI file, each well over 1 KiB (Filebeat 9 skips shorter files)."""
    d = root / "var" / "log" / "containers"
    d.mkdir(parents=True)
    docker = []
    for i in range(LINES):
        stream = "stderr" if i % 7 == 0 else "stdout"
        message = f'GET /item/{i} HTTP/1.1 200 "quoted" \u00fc\n'
        docker.append(
            orjson.dumps(
                {"log": message, "stream": stream, "time": f"2026-03-01T10:00:{i:02d}.{i * 1001:06d}Z"}
            ).decode()
            + "\n"
        )
    (d / DOCKER_FILE).write_text("".join(docker))
    cri = [f"2026-03-01T11:00:{i:02d}.{i * 37:09d}Z stdout F app line {i} with\ttab\n" for i in range(LINES)]
    (d / CRI_FILE).write_text("".join(cri))
    return d


def filebeat_config(logs: Path, port: int, data: Path, input_type: str) -> dict[str, Any]:
    """What Elastic's Kubernetes manifest configures (filestream with the container parser), or the
    older `container` input, minus add_kubernetes_metadata (no API here)."""
    if input_type == "filestream":
        filebeat_input: dict[str, Any] = {
            "type": "filestream",
            "id": "kubernetes-container-logs",
            "paths": [str(logs / "*.log")],
            "parsers": [{"container": None}],
            "prospector.scanner.check_interval": "500ms",
        }
    else:  # deprecated in 9.x: it runs only when allowed explicitly
        filebeat_input = {
            "type": "container",
            "allow_deprecated_use": True,
            "paths": [str(logs / "*.log")],
            "scan_frequency": "500ms",
        }
    return {
        "name": "e2e-node",
        "filebeat.inputs": [filebeat_input],
        "output.logstash": {"hosts": [f"127.0.0.1:{port}"], "backoff.init": "250ms"},
        "path.data": str(data),
        "path.logs": str(data / "logs"),
        "logging.level": "warning",
        "logging.to_stderr": True,
        "http.enabled": False,
        "monitoring.enabled": False,
    }


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def documented_differences(input_type: str) -> dict[str, str]:
    """`field glob -> kind` from the guide's "Remaining differences" table, for one Filebeat input."""
    section = GUIDE.read_text().split("## Remaining differences", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(
        r"^\|\s*`([^`]+)`\s*\|\s*(only Filebeat|only logship|value differs)\s*\|\s*(filestream|container|both)\s*\|",
        section,
        re.M,
    )
    assert rows, "no table rows in the guide's Remaining differences section"
    return {field: kind for field, kind, where in rows if where in ("both", input_type)}


def classify(fb: dict[str, Any], ls: dict[str, Any]) -> set[tuple[str, str]]:
    diffs = set()
    for key in fb.keys() | ls.keys():
        if key in ("_id",):
            continue
        if key not in ls:
            diffs.add((key, "only Filebeat"))
        elif key not in fb:
            diffs.add((key, "only logship"))
        elif fb[key] != ls[key]:
            diffs.add((key, "value differs"))
    return diffs


@pytest.mark.parametrize("input_type", ["filestream", "container"])
def test_filebeat_and_logship_documents_compared_field_by_field(
    pipeline: Pipeline, filebeat: Path, tmp_path: Path, input_type: str
) -> None:
    logs = write_logs(pipeline.root)
    pipeline.start()
    data = tmp_path / "filebeat"
    data.mkdir()
    cfg = tmp_path / "filebeat.yml"
    cfg.write_text(yaml.safe_dump(filebeat_config(logs, int(pipeline.env["LOGSHIP_PORT"]), data, input_type)))
    cfg.chmod(0o600)
    with open(tmp_path / "filebeat.err", "wb") as err:
        proc = subprocess.Popen(
            [str(filebeat), "-e", "--strict.perms=false", "-c", str(cfg), "--path.home", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            indexed = pipeline.wait_indexed(4 * LINES, timeout=120)
            time.sleep(1.0)  # anything sent twice would show up now
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert indexed, pipeline.diagnostics() + (tmp_path / "filebeat.err").read_text()[-3000:]
    docs = pipeline.documents()
    assert len(docs) == 4 * LINES, pipeline.counts()
    assert set(pipeline.counts()) == {f"{pipeline.prefix}logstash-logs-containers-2026.03.01"}, (
        "a stock Filebeat's events must land in the containers index, by the default routes"
    )
    by_agent: dict[str, dict[tuple[str, int], dict[str, Any]]] = {"filebeat": {}, "logship": {}}
    for doc in docs:
        key = (doc["log"]["file"]["path"], doc["log"]["offset"])
        assert key not in by_agent[doc["agent"]["type"]], f"duplicate {key}"
        by_agent[doc["agent"]["type"]][key] = flatten(doc)
    assert by_agent["filebeat"].keys() == by_agent["logship"].keys()

    documented = documented_differences(input_type)
    seen: set[tuple[str, str]] = set()
    for key, fb in by_agent["filebeat"].items():
        ls = by_agent["logship"][key]
        for field, kind in classify(fb, ls):
            seen.add((field, kind))
            allowed = [g for g, k in documented.items() if k == kind and fnmatch.fnmatchcase(field, g)]
            assert allowed, f"{field} ({kind}) is not in the guide's Remaining differences: {fb} vs {ls}"
        # what must be equal, explicitly (a difference here would also fail above)
        for field in ("@timestamp", "message", "stream", "log.offset", "log.file.path", "host.name"):
            assert fb[field] == ls[field], (field, fb, ls)
    docker_key = min(k for k in by_agent["filebeat"] if k[0].endswith(DOCKER_FILE))
    print("filebeat:", json.dumps(by_agent["filebeat"][docker_key], indent=1, sort_keys=True))
    print("logship:", json.dumps(by_agent["logship"][docker_key], indent=1, sort_keys=True))
    print("differences:", sorted(seen))
    stale = [(g, k) for g, k in documented.items() if not any(k == sk and fnmatch.fnmatchcase(f, g) for f, sk in seen)]
    assert stale == [], f"listed in the guide but no longer different: {stale}"
