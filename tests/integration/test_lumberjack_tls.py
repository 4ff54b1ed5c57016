"""Lumberjack over TLS and mTLS, our client to our server, with certificates made at run time (trustme)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import trustme

from logship.lumberjack import Batch, LumberjackClient, LumberjackServer
from logship.tls import TLSSettings, client_context, server_context

FAST = {"timeout": 2.0, "connect_timeout": 1.0, "backoff_initial": 0.05, "backoff_max": 0.2}


def write_pem(blob: trustme.Blob, path: Path) -> str:
    blob.write_to_path(str(path))
    return str(path)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("aggregator.logging.svc", "localhost")
    client = ca.issue_cert("shipper@node-1")
    stranger = other_ca.issue_cert("shipper@elsewhere")
    return {
        "ca": write_pem(ca.cert_pem, tmp_path / "ca.pem"),
        "other_ca": write_pem(other_ca.cert_pem, tmp_path / "other-ca.pem"),
        "server_cert": write_pem(server.cert_chain_pems[0], tmp_path / "server.pem"),
        "server_key": write_pem(server.private_key_pem, tmp_path / "server.key"),
        "client_cert": write_pem(client.cert_chain_pems[0], tmp_path / "client.pem"),
        "client_key": write_pem(client.private_key_pem, tmp_path / "client.key"),
        "stranger_cert": write_pem(stranger.cert_chain_pems[0], tmp_path / "stranger.pem"),
        "stranger_key": write_pem(stranger.private_key_pem, tmp_path / "stranger.key"),
    }


class Collector:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def __call__(self, batch: Batch) -> None:
        self.batches.append(batch)


@pytest.fixture
async def tls_server(pki: dict[str, str]) -> AsyncIterator[tuple[LumberjackServer, Collector]]:
    settings = TLSSettings(enabled=True, cert_file=pki["server_cert"], key_file=pki["server_key"])
    handler = Collector()
    server = LumberjackServer(handler, host="127.0.0.1", port=0, ssl=server_context(settings))
    await server.start()
    yield server, handler
    await server.close(1.0)


@pytest.fixture
async def mtls_server(pki: dict[str, str]) -> AsyncIterator[tuple[LumberjackServer, Collector]]:
    settings = TLSSettings(
        enabled=True,
        cert_file=pki["server_cert"],
        key_file=pki["server_key"],
        ca_file=pki["ca"],
        require_client_cert=True,
    )
    handler = Collector()
    server = LumberjackServer(handler, host="127.0.0.1", port=0, ssl=server_context(settings))
    await server.start()
    yield server, handler
    await server.close(1.0)


EVENTS = [orjson.dumps({"n": i}) for i in range(5)]


async def send_or_timeout(client: LumberjackClient, within: float = 1.5) -> bool:
    """True if the window was acked; False if it was still retrying after `within` seconds."""
    try:
        await asyncio.wait_for(client.send(EVENTS), within)
        return True
    except TimeoutError:
        return False
    finally:
        await client.close()


async def test_tls_with_verified_server_name(
    tls_server: tuple[LumberjackServer, Collector], pki: dict[str, str]
) -> None:
    server, handler = tls_server
    ctx = client_context(TLSSettings(enabled=True, ca_file=pki["ca"]))
    client = LumberjackClient([f"127.0.0.1:{server.port}"], ssl=ctx, server_hostname="aggregator.logging.svc", **FAST)
    assert await send_or_timeout(client)
    assert [e["n"] for e in handler.batches[0].events] == list(range(5))


async def test_tls_refuses_a_server_signed_by_another_ca(
    tls_server: tuple[LumberjackServer, Collector], pki: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = tls_server
    ctx = client_context(TLSSettings(enabled=True, ca_file=pki["other_ca"]))
    client = LumberjackClient([f"127.0.0.1:{server.port}"], ssl=ctx, server_hostname="localhost", **FAST)
    assert not await send_or_timeout(client)
    assert handler.batches == []
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def test_tls_refuses_a_wrong_server_name(
    tls_server: tuple[LumberjackServer, Collector], pki: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = tls_server
    ctx = client_context(TLSSettings(enabled=True, ca_file=pki["ca"]))
    client = LumberjackClient([f"127.0.0.1:{server.port}"], ssl=ctx, server_hostname="evil.example", **FAST)
    assert not await send_or_timeout(client)
    assert handler.batches == []
    assert "Hostname mismatch" in caplog.text or "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def test_tls_without_verification_connects(tls_server: tuple[LumberjackServer, Collector]) -> None:
    server, handler = tls_server
    ctx = client_context(TLSSettings(enabled=True, verify=False))
    client = LumberjackClient([f"127.0.0.1:{server.port}"], ssl=ctx, **FAST)
    assert await send_or_timeout(client)
    assert len(handler.batches) == 1


async def test_plaintext_client_to_tls_server_is_closed(
    tls_server: tuple[LumberjackServer, Collector], caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = tls_server
    client = LumberjackClient([f"127.0.0.1:{server.port}"], **FAST)
    assert not await send_or_timeout(client)
    assert handler.batches == []
    await tls_server_still_works(server, handler)


async def tls_server_still_works(server: LumberjackServer, handler: Collector) -> None:
    before = len(handler.batches)
    ctx = client_context(TLSSettings(enabled=True, verify=False))
    client = LumberjackClient([f"127.0.0.1:{server.port}"], ssl=ctx, **FAST)
    assert await send_or_timeout(client, 5.0)
    assert len(handler.batches) == before + 1


async def test_mtls_accepts_a_client_certificate_from_the_ca(
    mtls_server: tuple[LumberjackServer, Collector], pki: dict[str, str]
) -> None:
    server, handler = mtls_server
    ctx = client_context(
        TLSSettings(enabled=True, ca_file=pki["ca"], cert_file=pki["client_cert"], key_file=pki["client_key"])
    )
    client = LumberjackClient([f"127.0.0.1:{server.port}"], ssl=ctx, server_hostname="localhost", **FAST)
    assert await send_or_timeout(client)
    assert len(handler.batches) == 1


@pytest.mark.parametrize("who", ["no_cert", "stranger"])
async def test_mtls_rejects_clients_without_a_trusted_certificate(
    mtls_server: tuple[LumberjackServer, Collector],
    pki: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    who: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    server, handler = mtls_server
    cert = {"no_cert": {}, "stranger": {"cert_file": pki["stranger_cert"], "key_file": pki["stranger_key"]}}[who]
    ctx = client_context(TLSSettings(enabled=True, ca_file=pki["ca"], **cert))
    client = LumberjackClient([f"127.0.0.1:{server.port}"], ssl=ctx, server_hostname="localhost", **FAST)
    assert not await send_or_timeout(client)
    assert handler.batches == []
    assert "connection to 127.0.0.1" in caplog.text  # the client logs each failed attempt
    # A trusted client on the same server still gets through.
    good = client_context(
        TLSSettings(enabled=True, ca_file=pki["ca"], cert_file=pki["client_cert"], key_file=pki["client_key"])
    )
    ok = LumberjackClient([f"127.0.0.1:{server.port}"], ssl=good, server_hostname="localhost", **FAST)
    assert await send_or_timeout(ok, 5.0)
    assert len(handler.batches) == 1
