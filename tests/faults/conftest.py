"""Fixtures for the fault, bad-input and TLS tests.

* `secure_opensearch`: a real OpenSearch with the security plugin (HTTPS, basic auth), certificates
  and password made here at run time (scripts/opensearch-secure.sh, ports 9250-9259, `secure-*`).
* `private_opensearch`: a plain node of this module's own (ports 9220-9229, `fault-*`) for tests that
  pause or stop OpenSearch; the shared node is never paused. `private_rig` is a rig against it.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from logship.demo import search
from tests.faults.pki import CA
from tests.faults.rig import Rig

ROOT = Path(__file__).resolve().parents[2]
PLAIN_SCRIPT = ROOT / "scripts" / "opensearch.sh"
SECURE_SCRIPT = ROOT / "scripts" / "opensearch-secure.sh"


@contextmanager
def port_lock() -> Iterator[None]:
    """Held while choosing a port and starting a node on it: two test runs starting nodes at the same
    time (another engineer's, or another session's) would otherwise pick the same free port."""
    with open(os.path.join(tempfile.gettempdir(), "logship-fault-ports.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def free_port_in(first: int, last: int) -> int:
    """A port in [first, last] nothing listens on (another run may own the others)."""
    for port in range(first, last + 1):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                # the transport port (+100) must be free too
                with socket.socket() as t:
                    if t.connect_ex(("127.0.0.1", port + 100)) != 0:
                        return port
    pytest.fail(f"no free port in {first}-{last} for a private OpenSearch node; stop stale fault-*/secure-* nodes")


def _run(script: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        pytest.fail(f"{script.name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


@dataclass(frozen=True)
class SecureNode:
    url: str
    ca_file: Path
    username: str
    password: str
    name: str
    certs: Path


# Other test modules import `secure_opensearch`, which makes pytest create one fixture per importing
# module: they share the node started first instead of starting one each.
_SECURE: list[SecureNode] = []


@pytest.fixture(scope="session")
def secure_opensearch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNode]:
    if _SECURE:
        yield _SECURE[0]
        return
    certs = tmp_path_factory.mktemp("secure-os-certs")
    ca = CA("logship-test")
    ca.write(certs / "ca.pem")
    ca.issue("node", hosts=("127.0.0.1", "localhost")).write(certs, "node")
    ca.issue("admin", server=False).write(certs, "admin")
    # characters that need escaping in URLs, shells and YAML: a leak or a mangling would show
    password = "Ls-" + secrets.token_urlsafe(12) + "!@ :#"
    with port_lock():
        port = free_port_in(9250, 9259)
        name = f"secure-{port}"
        url = _run(
            SECURE_SCRIPT,
            "start",
            "--name",
            name,
            "--port",
            str(port),
            "--certs",
            str(certs),
            "--user",
            "logship",
            env={"OPENSEARCH_SECURE_PASSWORD": password},
        ).splitlines()[-1]
    _SECURE.append(SecureNode(url, certs / "ca.pem", "logship", password, name, certs))
    try:
        yield _SECURE[0]
    finally:
        _SECURE.clear()
        subprocess.run([str(SECURE_SCRIPT), "purge", "--name", name], capture_output=True, timeout=120)


@dataclass(frozen=True)
class PlainNode:
    url: str
    name: str

    def pid(self) -> int:
        return int(_run(PLAIN_SCRIPT, "pid", "--name", self.name))

    def stop(self) -> None:
        _run(PLAIN_SCRIPT, "stop", "--name", self.name)

    def start(self) -> None:
        # same data directory: indices written before the stop must survive it
        port = self.url.rsplit(":", 1)[1]
        _run(PLAIN_SCRIPT, "start", "--name", self.name, "--port", port)


def wait_green_or_yellow(url: str, timeout: float = 120.0) -> None:
    with urllib.request.urlopen(
        f"{url}/_cluster/health?wait_for_status=yellow&timeout={int(timeout)}s", timeout=timeout + 5
    ) as r:
        r.read()


@pytest.fixture(scope="module")
def private_opensearch() -> Iterator[PlainNode]:
    with port_lock():
        port = free_port_in(9220, 9229)
        name = f"fault-{port}"
        url = _run(PLAIN_SCRIPT, "start", "--name", name, "--port", str(port), "--fresh").splitlines()[-1]
    node = PlainNode(url, name)
    try:
        yield node
    finally:
        subprocess.run([str(PLAIN_SCRIPT), "stop", "--name", name], capture_output=True, timeout=120)


@pytest.fixture
def private_rig(tmp_path: Path, private_opensearch: PlainNode, index_prefix: str) -> Iterator[Rig]:
    """A rig against this module's private node (one the test may pause or stop)."""
    r = Rig(tmp_path, private_opensearch.url, index_prefix)
    yield r
    r.close()
    for path in (f"/{index_prefix}*", f"/_index_template/{index_prefix}logstash-logs"):
        try:
            search.request(private_opensearch.url + path, "DELETE")
        except (search.SearchError, OSError):
            pass


@pytest.fixture
def rig(tmp_path: Path, opensearch_url: str, index_prefix: str) -> Iterator[Rig]:
    r = Rig(tmp_path, opensearch_url, index_prefix)
    try:
        yield r
    finally:
        r.close()
        try:
            search.request(f"{opensearch_url}/_index_template/{index_prefix}logstash-logs", "DELETE")
        except (search.SearchError, OSError):
            pass
