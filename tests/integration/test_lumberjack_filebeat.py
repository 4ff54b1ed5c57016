"""A real Filebeat (Logstash output, Lumberjack v2) sending to our server.

Runs against Filebeat 7.17 and 9.3 (FILEBEAT_VERSIONS), each built by benchmarks/peers/build_filebeat.sh
from the Go module proxy into /var/cache/logship/tools. The module fixture runs that script, which
returns at once when the binary is cached; a first build takes many minutes on 2 cores.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import yaml

from logship.lumberjack import Batch, LumberjackServer, ServerLimits

VERSIONS = os.environ.get("FILEBEAT_VERSIONS", "v7.17.29,v9.3.0").split(",")
TOOLS = Path(os.environ.get("LOGSHIP_TOOLS", "/var/cache/logship/tools"))

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "build_filebeat.sh"


@pytest.fixture(scope="module", params=VERSIONS)
def filebeat(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(version, binary): each tested Filebeat, built once from the Go module proxy."""
    version: str = request.param
    binary = TOOLS / f"filebeat-{version.lstrip('v')}"
    if binary.is_file():
        return version, binary
    env = {**os.environ, "FILEBEAT_VERSION": version, "LOGSHIP_TOOLS": str(TOOLS)}
    env["PATH"] = f"/usr/local/go/bin:{env.get('PATH', '')}"
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0 or not binary.is_file():
        pytest.fail(f"could not build Filebeat {version} with {BUILD_SCRIPT}:\n{proc.stderr[-3000:]}")
    return version, binary


def filebeat_config(
    version: str, log_glob: str, port: int, data: Path, compression: int, window: int
) -> dict[str, object]:
    if version.startswith("v7."):
        filebeat_input: dict[str, object] = {"type": "log", "paths": [log_glob], "scan_frequency": "0.2s"}
    else:  # 9.x: the log input is deprecated; filestream reads files of 1 KiB or more
        filebeat_input = {
            "type": "filestream",
            "id": "lines",
            "paths": [log_glob],
            "prospector.scanner.check_interval": "0.2s",
        }
    return {
        "filebeat.inputs": [filebeat_input],
        "queue.mem": {"events": window * 4, "flush.min_events": window, "flush.timeout": "0.2s"},
        "output.logstash": {
            "hosts": [f"127.0.0.1:{port}"],
            "compression_level": compression,
            "bulk_max_size": window,
            "pipelining": 2,  # several windows in flight on one connection
            "timeout": "2s",  # shorter than the slow handler below: keepalives must hold it off
            "backoff.init": "0.2s",
        },
        "path.data": str(data),
        "path.logs": str(data / "logs"),
        "logging.level": "warning",
        "logging.to_stderr": True,
        "http.enabled": False,
        "monitoring.enabled": False,
    }


async def run_filebeat(
    filebeat: tuple[str, Path], tmp_path: Path, port: int, lines: int, compression: int, until: Callable[[], bool]
) -> tuple[int, str]:
    version, binary = filebeat
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("".join(f"filebeat line {i}\n" for i in range(lines)))
    data = tmp_path / "fb"
    data.mkdir()
    cfg = tmp_path / "filebeat.yml"
    cfg.write_text(yaml.safe_dump(filebeat_config(version, str(logs / "*.log"), port, data, compression, 500)))
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "-e",
        "--strict.perms=false",
        "-c",
        str(cfg),
        "--path.home",
        str(data),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(90):
            while not until():  # noqa: ASYNC110  (polling the handler's count)
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything sent twice would show up now
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                _, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            _, err = await proc.communicate()
    return proc.returncode or 0, err.decode(errors="replace")


def handler_for(batches: list[Batch], delay: float = 0.0) -> Callable[[Batch], Awaitable[None]]:
    async def handle(batch: Batch) -> None:
        if delay:
            await asyncio.sleep(delay)
        batches.append(batch)

    return handle


@pytest.mark.parametrize("compression", [0, 3], ids=["plain", "zlib3"])
async def test_filebeat_to_our_server(filebeat: tuple[str, Path], tmp_path: Path, compression: int) -> None:
    lines = 3000
    batches: list[Batch] = []
    server = LumberjackServer(handler_for(batches), host="127.0.0.1", port=0)
    await server.start()
    try:
        _, err = await run_filebeat(
            filebeat, tmp_path, server.port, lines, compression, lambda: sum(len(b.events) for b in batches) >= lines
        )
    finally:
        await server.close(2.0)
    events = [e for b in batches for e in b.events]
    messages = [e["message"] for e in events]
    assert sorted(messages) == sorted(f"filebeat line {i}" for i in range(lines)), err[-2000:]
    assert len(messages) == lines  # acked windows are not resent
    first = events[0]
    assert first["log"]["file"]["path"].endswith("app.log")
    assert first["@metadata"]["beat"] == "filebeat"
    assert "malformed_json" not in str(events[:10])


async def test_filebeat_waits_through_keepalives_for_a_slow_handler(filebeat: tuple[str, Path], tmp_path: Path) -> None:
    lines = 1000
    batches: list[Batch] = []
    # Each window takes 3s to handle; Filebeat's timeout is 2s: only keepalives keep it from resending.
    server = LumberjackServer(
        handler_for(batches, delay=3.0),
        host="127.0.0.1",
        port=0,
        limits=ServerLimits(keepalive_interval=0.5),
    )
    await server.start()
    try:
        _, err = await run_filebeat(
            filebeat, tmp_path, server.port, lines, 3, lambda: sum(len(b.events) for b in batches) >= lines
        )
    finally:
        await server.close(5.0)
    messages = [e["message"] for b in batches for e in b.events]
    assert len(messages) == lines, err[-2000:]
    assert sorted(messages) == sorted(f"filebeat line {i}" for i in range(lines))
