"""Fixtures shared by every test layer.

`opensearch_url` is a real OpenSearch node: the one named by OPENSEARCH_URL, or an instance named
`pytest` started by scripts/opensearch.sh for this session (reused if one already runs, stopped at the
end only if this session started it). LOGSHIP_TEST_OPENSEARCH_VERSION=3.3.0 runs the session against
that version (default: the script's, 2.19). `index_prefix` keeps tests out of each other's data.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opensearchpy import AsyncOpenSearch

ROOT = Path(__file__).resolve().parents[1]
OPENSEARCH_SCRIPT = ROOT / "scripts" / "opensearch.sh"


def _script(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if check:
        return _checked(args)
    return subprocess.run([str(OPENSEARCH_SCRIPT), *args], capture_output=True, text=True, timeout=600)


def _checked(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(OPENSEARCH_SCRIPT), *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"scripts/opensearch.sh {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    env_url = os.environ.get("OPENSEARCH_URL")
    if env_url:
        yield env_url.rstrip("/")
        return
    name = os.environ.get("LOGSHIP_TEST_OPENSEARCH_NAME", "pytest")
    port = os.environ.get("LOGSHIP_TEST_OPENSEARCH_PORT", "9201")
    version = os.environ.get("LOGSHIP_TEST_OPENSEARCH_VERSION")
    if version:  # e.g. 3.3.0: a second pass against the 3.x line, in an instance of its own
        os.environ["OPENSEARCH_VERSION"] = version
        name = f"{name}-{version}"
    already_running = _script("status", "--name", name, check=False).returncode == 0
    if not already_running:
        _checked(("start", "--name", name, "--port", port))
    url = _checked(("url", "--name", name)).stdout.strip()
    try:
        yield url
    finally:
        if not already_running:
            _script("stop", "--name", name, check=False)


def delete_indices(url: str, pattern: str) -> None:
    req = urllib.request.Request(f"{url}/{pattern}?expand_wildcards=all", method="DELETE")
    try:
        urllib.request.urlopen(req, timeout=30).read()
    except OSError:
        pass  # a node stopped by the test itself; nothing left to clean


@pytest.fixture
def index_prefix(opensearch_url: str) -> Iterator[str]:
    prefix = f"t-{uuid.uuid4().hex[:10]}-"
    yield prefix
    delete_indices(opensearch_url, f"{prefix}*")


@pytest.fixture
async def os_client(opensearch_url: str) -> AsyncIterator[AsyncOpenSearch]:
    client = AsyncOpenSearch(hosts=[opensearch_url], timeout=60)
    try:
        yield client
    finally:
        await client.close()
