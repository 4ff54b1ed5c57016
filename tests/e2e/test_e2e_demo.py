"""`make demo` itself: a short run, Ctrl-C, and a run that starts and stops its own OpenSearch node."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from logship.demo.pipeline import port_is_free

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DATE = r"\d{4}\.\d{2}\.\d{2}"
ANY_PORT = {"LOGSHIP_PORT": "0", "SHIPPER_HTTP_PORT": "0", "AGGREGATOR_HTTP_PORT": "0"}  # never collide


@pytest.fixture
def demo_env(opensearch_url: str, index_prefix: str) -> Iterator[dict[str, str]]:
    env = {**os.environ, "OPENSEARCH_URL": opensearch_url, "INDEX_PREFIX": index_prefix, "RATE": "200", **ANY_PORT}
    env.pop("KEEP", None)
    env.pop("KEEP_OPENSEARCH", None)
    yield env
    req = urllib.request.Request(f"{opensearch_url}/_index_template/{index_prefix}logstash-logs", method="DELETE")
    try:
        urllib.request.urlopen(req, timeout=30).read()
    except OSError:
        pass


def demo(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "logship.demo"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def assert_summary(out: str, prefix: str) -> None:
    rows = dict(re.findall(rf"^\s+({re.escape(prefix)}logstash-logs-\S+)\s+([\d,]+)$", out, re.M))
    containers = [k for k in rows if re.fullmatch(rf"{re.escape(prefix)}logstash-logs-containers-{DATE}", k)]
    apps = [k for k in rows if re.fullmatch(rf"{re.escape(prefix)}logstash-logs-app-{DATE}", k)]
    assert containers and len(apps) >= 2, out  # the app log spans two days (three across midnight)
    assert all(int(v.replace(",", "")) > 0 for v in rows.values())
    assert "indexed exactly once" in out, out
    assert out.count("a document from") == 2
    assert '"kubernetes"' in out and '"namespace"' in out
    assert "\\n\\tat " in out  # the app sample is a joined Java stack trace
    assert "curl -s" in out


def test_demo_short_run_shows_both_index_families(demo_env: dict[str, str], index_prefix: str) -> None:
    proc = demo({**demo_env, "DURATION": "8"})
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-4000:]
    assert_summary(out, index_prefix)
    assert re.search(r"written [\d,]+ \| shipped [\d,]+ \| acked [\d,]+ \| indexed [\d,]+", err), err[-2000:]


def _children(pid: int) -> list[psutil.Process]:
    kids: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
    return kids


def _command(proc: psutil.Process) -> str:
    """The command line, or "" for a child that exited meanwhile (a short-lived helper may be a zombie
    between its exit and its parent reaping it)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for_pipeline(proc: subprocess.Popen[str], timeout: float = 90.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        kids = _children(proc.pid)
        names = " ".join(_command(k) for k in kids)
        if " shipper -c " in names and " aggregator -c " in names:
            return kids
        time.sleep(0.2)
    pytest.fail("the demo did not start its shipper and aggregator")


def test_demo_ctrl_c_finishes_gracefully_and_stops_everything(demo_env: dict[str, str], index_prefix: str) -> None:
    proc = demo({**demo_env, "DURATION": "0"})  # 0: until Ctrl-C
    kids = _wait_for_pipeline(proc)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-4000:]
    assert "demo: stopping" in err
    assert_summary(out, index_prefix)
    assert not [k for k in kids if _alive(k)]


def test_demo_second_ctrl_c_stops_at_once_and_still_cleans_up(demo_env: dict[str, str]) -> None:
    proc = demo({**demo_env, "DURATION": "0"})
    kids = _wait_for_pipeline(proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert not [k for k in kids if _alive(k)]
    work = re.search(r"work directory (\S+)", err)
    assert work is not None, err
    assert f"logs and data kept in {work.group(1)}" in err  # an interrupted run keeps its logs and says where
    subprocess.run(["rm", "-rf", work.group(1)], check=False)


def test_demo_starts_and_stops_its_own_opensearch() -> None:
    """The fresh-machine path: no OPENSEARCH_URL, the demo runs scripts/opensearch.sh itself."""
    name, port = "demo-e2e", 9241
    script = ROOT / "scripts" / "opensearch.sh"
    subprocess.run([str(script), "stop", "--name", name], capture_output=True, check=False)
    if not port_is_free(port) or not port_is_free(port + 100):
        pytest.fail(f"port {port} or {port + 100} is taken; the demo test needs it for its own node")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENSEARCH_URL", "KEEP", "KEEP_OPENSEARCH")}
    env.update(DEMO_OPENSEARCH_NAME=name, DEMO_OPENSEARCH_PORT=str(port), DURATION="5", RATE="200", INDEX_PREFIX="")
    env.update(ANY_PORT)
    try:
        proc = demo(env)
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-4000:]
        assert f"starting OpenSearch '{name}' on port {port}" in err
        assert_summary(out, "")
        assert f"http://127.0.0.1:{port}" in out
        status = subprocess.run([str(script), "status", "--name", name], capture_output=True, check=False)
        assert status.returncode == 3, status.stdout  # stopped: the demo stops what it started
    finally:
        subprocess.run([str(script), "stop", "--name", name], capture_output=True, check=False)
