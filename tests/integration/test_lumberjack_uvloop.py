"""The product runs on uvloop (`uvloop.run`); the other lumberjack tests use the default loop, so the
same server and client paths (plain, zlib, TLS, a bad peer beside a good one, keepalives, resend)
run here once more under uvloop."""

from __future__ import annotations

import asyncio
import ssl

import orjson
import trustme
import uvloop

from logship.lumberjack import AckDecoder, Batch, LumberjackClient, LumberjackServer, ServerLimits, encode_window


async def scenario() -> dict[str, object]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    batches: list[Batch] = []
    failures = [1]

    async def handler(batch: Batch) -> None:
        await asyncio.sleep(0.3)
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("first attempt fails")
        batches.append(batch)

    limits = ServerLimits(keepalive_interval=0.05, idle_timeout=5.0)
    plain = LumberjackServer(handler, host="127.0.0.1", port=0, limits=limits)
    secure = LumberjackServer(handler, host="127.0.0.1", port=0, ssl=server_ctx, limits=limits)
    await plain.start()
    await secure.start()
    opts = {"timeout": 0.2, "backoff_initial": 0.05, "backoff_max": 0.1}
    clients = [
        LumberjackClient([f"127.0.0.1:{plain.port}"], compression_level=0, **opts),  # type: ignore[arg-type]
        LumberjackClient([f"127.0.0.1:{plain.port}"], compression_level=3, max_pending_windows=2, **opts),  # type: ignore[arg-type]
        LumberjackClient([f"127.0.0.1:{secure.port}"], ssl=client_ctx, server_hostname="localhost", **opts),  # type: ignore[arg-type]
    ]
    # A bad peer on the plain server while the clients send.
    reader, writer = await asyncio.open_connection("127.0.0.1", plain.port)
    writer.write(b"1W\x00\x00\x00\x01")
    bad_closed = (await asyncio.wait_for(reader.read(100), 5)) == b""

    def window(c: int, w: int) -> list[bytes]:
        return [orjson.dumps({"c": c, "w": w, "i": i}) for i in range(50)]

    await asyncio.wait_for(asyncio.gather(*(c.send(window(n, w)) for n, c in enumerate(clients) for w in range(3))), 30)
    for c in clients:
        await c.close()
    # Raw ack check: keepalive zeros then the final seq.
    r2, w2 = await asyncio.open_connection("127.0.0.1", plain.port)
    w2.write(encode_window(window(9, 0)))
    acks: list[int] = []
    dec = AckDecoder()
    while 50 not in acks:
        acks += dec.feed(await asyncio.wait_for(r2.read(100), 5))
    w2.close()
    await plain.close(1.0)
    await secure.close(1.0)
    return {"loop": type(asyncio.get_running_loop()), "batches": batches, "bad_closed": bad_closed, "acks": acks}


def test_server_and_client_under_uvloop() -> None:
    out = uvloop.run(scenario())
    assert out["loop"] is uvloop.Loop
    assert out["bad_closed"]
    batches = out["batches"]
    assert isinstance(batches, list)
    got = sorted((e["c"], e["w"], e["i"]) for b in batches for e in b.events)
    expected = sorted(
        [(c, w, i) for c in range(3) for w in range(3) for i in range(50)] + [(9, 0, i) for i in range(50)]
    )
    assert got == expected  # the failed first window was resent; nothing lost, nothing doubled
    acks = out["acks"]
    assert isinstance(acks, list)
    assert acks[-1] == 50 and acks.count(0) >= 2
