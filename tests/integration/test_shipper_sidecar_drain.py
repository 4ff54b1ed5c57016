"""A sidecar's last events at pod termination: the app container has exited before the sidecar is
stopped (native sidecar order), and the sidecar's registry dies with the pod, so at SIGTERM it reads
the app's file to the end and flushes the pending multi-line event. A node shipper keeps that event
pending instead (its registry survives; the next start resumes before it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.registry import RegistryFile
from tests.integration.test_shipper_support import Collector, RunningShipper, append, config, wait_until


@pytest.fixture
async def collector():  # type: ignore[no-untyped-def]
    c = Collector()
    await c.start()
    yield c
    await c.close()


def event(n: int) -> bytes:
    head = f"2026-01-01 09:00:{n:02d} ERROR request {n} failed\n"
    return f"{head}java.lang.IllegalStateException: {n}\n\tat a.B(B.java:{n})\n".encode()


@pytest.mark.parametrize("sidecar", [True, False])
async def test_last_multiline_event_at_shutdown(tmp_path: Path, collector: Collector, sidecar: bool) -> None:
    app = {
        "type": "app",
        "paths": [str(tmp_path / "app/logs/log-*.log")],
        # long enough that only the shutdown can flush the last event
        "multiline": {"start_pattern": r"^\d{4}-\d{2}-\d{2} ", "timeout": "60s"},
    }
    cfg = config(tmp_path, collector.server.port, inputs=[app], sidecar=sidecar)  # type: ignore[union-attr]
    log = tmp_path / "app/logs/log-2026-01-01.log"
    async with RunningShipper(cfg):
        append(log, event(1) + event(2))
        await wait_until(lambda: len(collector.events) == 1)
        # the app's last event, written just before it exits; then the sidecar gets SIGTERM
        append(log, event(3))
    messages = [e["message"] for e in collector.events]
    if sidecar:
        assert [m.split()[4] for m in messages] == ["1", "2", "3"]
        assert messages[-1].endswith("\tat a.B(B.java:3)")
    else:
        # the node shipper leaves the unfinished event to its next start: the checkpoint is before it
        assert [m.split()[4] for m in messages] == ["1"]
        (entry,) = RegistryFile(str(tmp_path / "registry.json")).load().entries.values()
        assert entry.offset == len(event(1))
