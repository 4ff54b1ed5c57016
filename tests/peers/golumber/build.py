"""Build the go-lumber test peer into tests/peers/bin/ when it is missing or older than its sources.

Used by a session-scoped pytest fixture, so CI builds the peer itself (needs `go` and the Go module
proxy). Run directly to build by hand: `python tests/peers/golumber/build.py`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
BIN_DIR = SOURCE_DIR.parent / "bin"
BINARY = BIN_DIR / "golumber"
SOURCES = ("main.go", "go.mod", "go.sum")


class PeerBuildError(RuntimeError):
    pass


def _stale() -> bool:
    if not BINARY.exists():
        return True
    built = BINARY.stat().st_mtime
    return any((SOURCE_DIR / name).stat().st_mtime > built for name in SOURCES)


def ensure_built(timeout: float = 600.0) -> Path:
    """Return the path of an up-to-date golumber binary, building it first if needed."""
    go = shutil.which("go")
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    with open(BIN_DIR / ".golumber.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test runs build once
        if not _stale():
            return BINARY
        if go is None:
            raise PeerBuildError("`go` is not on PATH; install Go to build the go-lumber test peer")
        env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0")
        print(f"building go-lumber test peer -> {BINARY}", file=sys.stderr, flush=True)
        tmp = BINARY.with_suffix(".tmp")
        proc = subprocess.run(
            [go, "build", "-o", str(tmp), "."],
            cwd=SOURCE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise PeerBuildError(f"go build failed ({proc.returncode}):\n{proc.stderr}")
        tmp.replace(BINARY)
        return BINARY


if __name__ == "__main__":
    print(ensure_built())
