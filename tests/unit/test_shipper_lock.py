"""One shipper per registry: a second `logship shipper` on the same registry path exits at start with
an error naming the key, and the first one keeps running; the lock dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logship.config import ConfigError
from shipper.lock import registry_lock


def _config(tmp_path: Path, registry: Path, http_port: int) -> Path:
    (tmp_path / "logs").mkdir(exist_ok=True)
    cfg = tmp_path / f"shipper-{http_port}.yml"
    cfg.write_text(
        "shipper:\n"
        "  name: lock-test\n"
        "  inputs:\n"
        f"    - {{type: containers, paths: ['{tmp_path}/logs/*.log']}}\n"
        f"  registry: {{path: '{registry}'}}\n"
        # nothing listens there: the first shipper keeps retrying, which is all this test needs
        "  output: {hosts: ['127.0.0.1:9'], backoff: {initial: 1s, max: 1s}}\n"
        f"  http: {{host: 127.0.0.1, port: {http_port}}}\n"
    )
    return cfg


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _shipper(cfg: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "logship.cli", "shipper", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_second_shipper_on_one_registry_exits_with_a_clear_error(tmp_path: Path) -> None:
    registry = tmp_path / "state" / "registry.json"
    first = _shipper(_config(tmp_path, registry, _free_port()))
    try:
        lock = Path(f"{registry}.lock")
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first shipper never took the lock"
            time.sleep(0.1)
        second = _shipper(_config(tmp_path, registry, _free_port()))
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2, err
        assert "shipper.registry.path" in err and str(registry) in err
        assert f"pid {first.pid}" in err
        assert first.poll() is None, "the first shipper must keep running"
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0
    # the holder is gone: the registry can be locked again
    with registry_lock(str(registry)):
        pass


def test_lock_is_released_when_the_holder_dies(tmp_path: Path) -> None:
    registry = str(tmp_path / "registry.json")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from shipper.lock import registry_lock\nwith registry_lock({registry!r}):\n"
         "    print('held', flush=True)\n    import time; time.sleep(600)"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="in use by another shipper"), registry_lock(registry):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with registry_lock(registry):
        assert Path(f"{registry}.lock").read_text().strip() == str(os.getpid())


def test_unwritable_registry_directory_names_the_key(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"shipper\.registry\.path: cannot create the lock file"):
        with registry_lock(str(blocker / "registry.json")):
            pass
