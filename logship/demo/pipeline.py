"""Shipper and aggregator as real child processes, their readiness and their Prometheus metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
LOCAL_CONFIGS = REPO / "deploy" / "local"


def logship_command() -> list[str]:
    """The `logship` console script next to this interpreter, else `python -m logship`."""
    script = Path(sys.executable).with_name("logship")
    return [str(script)] if script.exists() else [sys.executable, "-m", "logship"]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` if nothing listens there, else a port the kernel picks."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value}, labelled samples summed under their name."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
    return out


class ServiceError(RuntimeError):
    """A child process that exited or never became ready; the message holds the tail of its log."""


class Service:
    """One `logship <side> -c CONFIG` child process with its own log file and ops port.

    It runs in its own session, so a Ctrl-C in the terminal reaches only the parent, which then stops
    the children in order (shipper first, so it can flush what it read).
    """

    def __init__(self, side: str, config: Path, env: Mapping[str, str], http_port: int, log_path: Path) -> None:
        self.side = side
        self.config = config
        self.env = {**os.environ, **env}
        self.http_port = http_port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*logship_command(), self.side, "-c", str(self.config)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check_alive(self) -> None:
        if self.proc is None:
            raise ServiceError(f"{self.side} was not started")
        code = self.proc.poll()
        if code is not None:
            raise ServiceError(
                f"{self.side} exited with status {code}; last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        reason = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status, body = http_get(f"{self.base_url}/readyz", timeout=2.0)
                if status == 200:
                    return
                reason = body.strip()
            except OSError as exc:
                reason = str(exc)
            time.sleep(0.2)
        raise ServiceError(
            f"{self.side} not ready after {timeout:.0f}s ({reason}); last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def metrics(self) -> dict[str, float]:
        try:
            status, body = http_get(f"{self.base_url}/metrics", timeout=2.0)
        except OSError:
            return {}
        return parse_metrics(body) if status == 200 else {}

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful: flush, wait for acks, write checkpoints), SIGKILL after `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> Service:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def local_env(
    *, root: Path, data: Path, opensearch_url: str, lumberjack_port: int, shipper_http_port: int,
    aggregator_http_port: int, index_prefix: str = "", node_name: str = "demo-node",
) -> dict[str, str]:  # fmt: skip
    """The variables `deploy/local/*.yml` read."""
    return {
        "LOGSHIP_ROOT": str(root),
        "LOGSHIP_DATA": str(data),
        "OPENSEARCH_URL": opensearch_url,
        "LOGSHIP_PORT": str(lumberjack_port),
        "SHIPPER_HTTP_PORT": str(shipper_http_port),
        "AGGREGATOR_HTTP_PORT": str(aggregator_http_port),
        "INDEX_PREFIX": index_prefix,
        "LOGSHIP_NODE_NAME": node_name,
    }
