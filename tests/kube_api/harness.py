"""The shipper in this process (real tailer, harvesters, provider, watch) against the real kube-apiserver,
its windows collected instead of sent, plus CRI log files as the kubelet names them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from shipper.app import Shipper
from shipper.config import ShipperConfig
from tests.kube_api.conftest import NODE, KubeApi


def cid() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


class Node:
    """`<root>/var/log/containers/<pod>_<ns>_<container>-<id>.log`, CRI lines."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "var" / "log" / "containers"
        self.dir.mkdir(parents=True)

    def path(self, ns: str, pod: str, container: str, container_id: str) -> Path:
        return self.dir / f"{pod}_{ns}_{container}-{container_id}.log"

    def write(self, path: Path, *messages: str, stream: str = "stdout") -> None:
        with path.open("a") as f:
            for m in messages:
                f.write(f"2026-03-01T10:00:00.000000000Z {stream} F {m}\n")


class Collected:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def __call__(self, events: Sequence[bytes]) -> None:
        self.events.extend(orjson.loads(e) for e in events)

    def of(self, message_prefix: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["message"].startswith(message_prefix)]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; have {len(self.events)} events")
            await asyncio.sleep(0.1)


def config(tmp: Path, node: Node, kubeconfig: Path, **kube: Any) -> ShipperConfig:
    return ShipperConfig.from_dict(
        {
            "name": NODE,
            "inputs": [{"type": "containers", "paths": [str(node.dir / "*.log")]}],
            "scan_interval": "200ms",
            "registry": {"path": str(tmp / "registry.json"), "flush_interval": "200ms"},
            "output": {"window_size": 16},
            "http": {"host": "127.0.0.1", "port": 0},
            "shutdown_timeout": "5s",
            "kubernetes": {
                "enabled": True,
                "kubeconfig": str(kubeconfig),
                "wait_for_pod": "3s",
                "backoff": {"initial": "200ms", "max": "1s"},
                **kube,
            },
        }
    )


@asynccontextmanager
async def running_shipper(
    tmp: Path, node: Node, api: KubeApi, user: str = "admin", **kube: Any
) -> AsyncIterator[tuple[Shipper, Collected]]:
    got = Collected()
    shipper = Shipper(config(tmp, node, api.kubeconfig(user, tmp / f"kubeconfig-{user}"), **kube), send=got)
    task = asyncio.create_task(shipper.run(ops_port=0))
    try:
        yield shipper, got
    finally:
        shipper.stop()
        await asyncio.wait_for(task, 30)


def metric(shipper: Shipper, name: str, **labels: str) -> float:
    value = shipper.metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value
