"""Interoperability with the reference implementation, github.com/elastic/go-lumber (v2 client and server).

The Go peer (tests/peers/golumber) is built on first use by a session fixture; it needs `go` and the
Go module proxy (or a warm module cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import trustme

from logship.lumberjack import Batch, LumberjackClient, LumberjackServer, ServerLimits
from tests.peers.golumber.build import ensure_built


@pytest.fixture(scope="session")
def golumber() -> Path:
    return ensure_built()


class Collector:
    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[Batch] = []
        self.delay = delay

    async def __call__(self, batch: Batch) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.batches.append(batch)


async def run_go_client(golumber: Path, port: int, *args: str, within: float = 60.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(golumber),
        "client",
        "-addr",
        f"127.0.0.1:{port}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def assert_go_events(batches: list[Batch], total: int, window: int) -> None:
    """Every event the Go client sent arrived exactly once, in order, in windows of `window`."""
    assert [len(b.events) for b in batches] == [min(window, total - i) for i in range(0, total, window)]
    events = [e for b in batches for e in b.events]
    assert [e["seq"] for e in events] == list(range(total))
    assert events[7] == {"seq": 7, "message": "go-lumber event 7"}


@pytest.mark.parametrize("level", [0, 3], ids=["plain", "zlib3"])
async def test_go_lumber_client_to_our_server(golumber: Path, level: int) -> None:
    handler = Collector()
    server = LumberjackServer(handler, host="127.0.0.1", port=0)
    await server.start()
    try:
        rc, out, err = await run_go_client(
            golumber, server.port, "-events", "1050", "-window", "100", "-compress", str(level)
        )
    finally:
        await server.close(2.0)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[-1] == "DONE 1050"  # the Go client checked every ack against its window size
    assert lines[:-1] == ["ACKED 100"] * 10 + ["ACKED 50"]
    assert_go_events(handler.batches, 1050, 100)


async def test_go_lumber_client_survives_a_slow_handler_through_keepalives(golumber: Path) -> None:
    # The Go client gives up after 1s without an ack; the handler takes 2.5s per window.
    handler = Collector(delay=2.5)
    server = LumberjackServer(handler, host="127.0.0.1", port=0, limits=ServerLimits(keepalive_interval=0.3))
    await server.start()
    try:
        rc, out, err = await run_go_client(golumber, server.port, "-events", "20", "-window", "10", "-timeout", "1s")
    finally:
        await server.close(2.0)
    assert rc == 0, err
    assert out.splitlines()[-1] == "DONE 20"
    assert_go_events(handler.batches, 20, 10)


class GoServer:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc, self.port = proc, port

    async def batches(self, count: int, within: float = 30.0) -> list[list[dict[str, object]]]:
        """Read `count` BATCH lines (each printed by the Go server as it acks that batch)."""
        assert self.proc.stdout is not None
        out: list[list[dict[str, object]]] = []
        async with asyncio.timeout(within):
            while len(out) < count:
                line = (await self.proc.stdout.readline()).decode()
                assert line, "go-lumber server exited"
                tag, n, body = line.rstrip("\n").split(" ", 2)
                assert tag == "BATCH"
                events = json.loads(body)
                assert len(events) == int(n)
                out.append(events)
        return out


@contextlib.asynccontextmanager
async def go_server(golumber: Path, *args: str) -> AsyncIterator[GoServer]:
    proc = await asyncio.create_subprocess_exec(
        str(golumber), "server", "-bind", "127.0.0.1:0", *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            first = (await proc.stdout.readline()).decode().split()
        assert first[0] == "LISTEN", first
        yield GoServer(proc, int(first[1].rsplit(":", 1)[1]))
    finally:
        proc.kill()
        await proc.wait()


def our_events(n: int, start: int = 0) -> list[bytes]:
    return [
        orjson.dumps({"seq": i, "message": f"logship event {i}", "unicode": "ünï"}) for i in range(start, start + n)
    ]


@pytest.mark.parametrize("level", [0, 3, 9], ids=["plain", "zlib3", "zlib9"])
async def test_our_client_to_go_lumber_server(golumber: Path, level: int) -> None:
    async with go_server(golumber) as peer:
        client = LumberjackClient([f"127.0.0.1:{peer.port}"], compression_level=level, timeout=10.0)
        try:
            for w in range(8):
                # send() returns only after go-lumber acked the whole window
                await client.send(our_events(125, w * 125))
        finally:
            await client.close()
        batches = await peer.batches(8)
    assert [len(b) for b in batches] == [125] * 8
    events = [e for b in batches for e in b]
    assert [e["seq"] for e in events] == list(range(1000))
    assert events[3] == {"seq": 3, "message": "logship event 3", "unicode": "ünï"}


async def test_our_client_treats_go_lumber_keepalives_as_liveness(golumber: Path) -> None:
    # go-lumber holds each batch 2s and sends keepalives every 0.3s; our timeout is 1s.
    async with go_server(golumber, "-ack-delay", "2s", "-keepalive", "300ms") as peer:
        client = LumberjackClient([f"127.0.0.1:{peer.port}"], timeout=1.0, backoff_initial=0.1)
        try:
            await client.send(our_events(10))
        finally:
            await client.close()
        batches = await peer.batches(1)
        # No timeout means no resend: a second copy would show up as another batch.
        assert peer.proc.stdout is not None
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await peer.proc.stdout.readline()
    assert [e["seq"] for e in batches[0]] == list(range(10))


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return {k: str(v) for k, v in paths.items()}


async def test_tls_both_directions_with_go_lumber(golumber: Path, pki: dict[str, str]) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki["cert"], pki["key"])
    handler = Collector()
    server = LumberjackServer(handler, host="127.0.0.1", port=0, ssl=server_ctx)
    await server.start()
    try:
        rc, out, err = await run_go_client(
            golumber,
            server.port,
            "-events", "30", "-window", "10", "-compress", "3",
            "-tls-ca", pki["ca"], "-server-name", "localhost",
        )  # fmt: skip
    finally:
        await server.close(2.0)
    assert rc == 0, err
    assert out.splitlines()[-1] == "DONE 30"
    assert_go_events(handler.batches, 30, 10)

    client_ctx = ssl.create_default_context(cafile=pki["ca"])
    async with go_server(golumber, "-tls-cert", pki["cert"], "-tls-key", pki["key"]) as peer:
        client = LumberjackClient([f"127.0.0.1:{peer.port}"], ssl=client_ctx, server_hostname="localhost", timeout=10.0)
        try:
            await client.send(our_events(10))
        finally:
            await client.close()
        batches = await peer.batches(1)
    assert [e["seq"] for e in batches[0]] == list(range(10))
