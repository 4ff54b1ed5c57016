"""Helpers for the shipper's integration tests: a real protocol server, kubelet-like log trees."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from logship.lumberjack.server import Batch, LumberjackServer
from shipper.app import Shipper
from shipper.config import ShipperConfig

T = "2026-01-01T12:00:00.123456789Z"


class Collector:
    """A LumberjackServer on loopback that keeps every event it acknowledges."""

    def __init__(self, delay: float = 0.0) -> None:
        # one slot per window in the order windows arrived: the server runs several handlers of a
        # connection at once, and a later one may finish first, but the order sent is what is tested
        self._windows: list[list[dict[str, Any]]] = []
        self.delay = delay
        self._slow = asyncio.Lock()
        self.server: LumberjackServer | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for w in self._windows for e in w]

    def clear(self) -> None:
        self._windows.clear()

    async def handler(self, batch: Batch) -> None:
        slot: list[dict[str, Any]] = []
        self._windows.append(slot)
        if self.delay:
            # slow as a whole (like a saturated OpenSearch), however many windows the server handles at once
            async with self._slow:
                await asyncio.sleep(self.delay)
        slot.extend(batch.events)

    async def start(self, port: int = 0) -> int:
        self.server = LumberjackServer(self.handler, host="127.0.0.1", port=port)
        await self.server.start()
        return self.server.port

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close(1.0)

    def messages(self, path_contains: str = "") -> list[str]:
        return [e["message"] for e in self.events if path_contains in e["log"]["file"]["path"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (polling state no event exposes)
            await asyncio.sleep(0.02)


def config(tmp_path: Path, port: int, **over: Any) -> ShipperConfig:
    """A shipper config tailing tmp_path's kubelet-like tree, quick timings for tests."""
    doc: dict[str, Any] = {
        "name": "node-test",
        "inputs": [
            {"type": "containers", "paths": [str(tmp_path / "var/log/containers/*.log")]},
            {"type": "app", "paths": [str(tmp_path / "app/logs/log-*.log")]},
        ],
        "scan_interval": "200ms",
        "registry": {"path": str(tmp_path / "registry.json"), "flush_interval": "100ms"},
        "output": {
            "hosts": [f"127.0.0.1:{port}"],
            "window_size": 100,
            "backoff": {"initial": "100ms", "max": "500ms"},
            "timeout": "5s",
        },
        "http": {"host": "127.0.0.1", "port": 0},
        "shutdown_timeout": "5s",
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return ShipperConfig.from_dict(doc)


class RunningShipper:
    """A Shipper running in this event loop; `async with` starts it, leaving stops it (as SIGTERM)."""

    def __init__(self, cfg: ShipperConfig) -> None:
        self.shipper = Shipper(cfg)
        self.task: asyncio.Task[int] | None = None

    async def __aenter__(self) -> Shipper:
        self.task = asyncio.create_task(self.shipper.run())
        return self.shipper

    async def __aexit__(self, *exc: object) -> None:
        self.shipper.stop()
        assert self.task is not None
        assert await asyncio.wait_for(self.task, 20) == 0


class PodLog:
    """A container log as kubelet lays it out: /var/log/pods/<ns>_<pod>_<uid>/<c>/0.log plus the
    /var/log/containers/<pod>_<ns>_<c>-<id>.log symlink."""

    def __init__(self, root: Path, pod: str = "web-1", ns: str = "shop", container: str = "app") -> None:
        self.cid = (pod + ns + container).encode().hex().ljust(64, "0")[:64]
        self.dir = root / "var/log/pods" / f"{ns}_{pod}_0f1e2d3c-aaaa-bbbb-cccc-123456789abc" / container
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = self.dir / "0.log"
        self.file.touch()
        links = root / "var/log/containers"
        links.mkdir(parents=True, exist_ok=True)
        self.link = links / f"{pod}_{ns}_{container}-{self.cid}.log"
        if not self.link.is_symlink():
            self.link.symlink_to(self.file)

    def append(self, data: bytes) -> None:
        with open(self.file, "ab") as f:
            f.write(data)


def docker(text: str, stream: str = "stdout") -> bytes:
    return orjson.dumps({"log": text, "stream": stream, "time": T}) + b"\n"


def cri(text: str, stream: str = "stdout", tag: str = "F") -> bytes:
    return f"{T} {stream} {tag} {text}\n".encode()


def append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
