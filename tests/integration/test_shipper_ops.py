"""/metrics, /healthz, /readyz of a running shipper; readiness follows registry writes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.integration.test_shipper_support import Collector, PodLog, RunningShipper, config, docker, wait_until


async def get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} missing")


async def test_metrics_and_probes(tmp_path: Path) -> None:
    collector = Collector()
    await collector.start()
    pod = PodLog(tmp_path)
    pod.append(b"".join(docker(f"m{i}\n") for i in range(120)))
    regdir = tmp_path / "state"
    cfg = config(tmp_path, collector.server.port, registry={"path": str(regdir / "registry.json")})  # type: ignore[union-attr]
    try:
        async with RunningShipper(cfg) as shipper:
            await wait_until(lambda: len(collector.events) == 120)
            await wait_until(lambda: shipper.ops is not None and shipper.ops.port != 0)
            port = shipper.ops.port  # type: ignore[union-attr]
            status, body = await get(port, "/metrics")
            assert status == 200
            await wait_until(lambda: shipper.metrics.events_acked._value.get() == 120)  # type: ignore[attr-defined]
            status, body = await get(port, "/metrics")
            assert metric(body, "logship_shipper_lines_read_total") == 120
            assert metric(body, "logship_shipper_events_sent_total") == 120
            assert metric(body, "logship_shipper_events_acked_total") == 120
            assert metric(body, "logship_shipper_bytes_read_total") == pod.file.stat().st_size
            assert metric(body, "logship_shipper_open_files") == 1
            assert f'logship_shipper_file_bytes_behind{{path="{pod.link}"}} 0.0' in body
            assert await get(port, "/healthz") == (200, "ok\n")
            assert await get(port, "/readyz") == (200, "ok\n")
            assert (await get(port, "/nope"))[0] == 404

            # the registry directory becomes unusable: not ready, state kept, retried until it works again
            await wait_until(lambda: (regdir / "registry.json").exists())
            os.rename(regdir, tmp_path / "state.moved")
            regdir.write_text("not a directory")
            pod.append(docker("while broken\n"))
            await wait_until(lambda: len(collector.events) == 121)
            await wait_until(lambda: not shipper._registry_ok)
            status, body = await get(port, "/readyz")
            assert status == 503 and "registry" in body and "cannot be written" in body
            regdir.unlink()
            os.rename(tmp_path / "state.moved", regdir)
            await wait_until(lambda: shipper._registry_ok)
            assert (await get(port, "/readyz"))[0] == 200
    finally:
        await collector.close()
    from shipper.registry import RegistryFile

    (entry,) = RegistryFile(regdir / "registry.json").load().entries.values()
    assert entry.offset == pod.file.stat().st_size
