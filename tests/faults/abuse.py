"""Clients that abuse a lumberjack server: each does one bad thing and reports how the server reacted.

Real sockets on loopback. Each returns an `Outcome`: whether the server closed the connection (EOF or
reset) and how long that took, and what the server sent before (a well-behaved server sends nothing,
or keepalive acks, and never acks a broken window).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import socket
import struct
import time
import zlib
from dataclasses import dataclass

from logship.lumberjack.codec import encode_window

GIB = 1024**3


@dataclass
class Outcome:
    name: str
    closed_by_server: bool
    seconds: float
    received: bytes
    local: str = ""  # our "host:port", as the server names this connection in its log

    @property
    def acked_seqs(self) -> list[int]:
        """Ack frames the server sent (2A + uint32), in order."""
        out = []
        data = self.received
        for i in range(0, len(data) - 5, 6):
            if data[i : i + 2] == b"2A":
                out.append(struct.unpack(">I", data[i + 2 : i + 6])[0])
        return out


async def _until_closed(
    name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, t0: float, wait_s: float
) -> Outcome:
    received = b""
    closed = False
    sock = writer.get_extra_info("sockname")
    local = f"{sock[0]}:{sock[1]}" if isinstance(sock, tuple) else ""
    try:
        async with asyncio.timeout(wait_s):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    closed = True
                    break
                received += chunk
    except TimeoutError:
        pass
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    finally:
        writer.transport.abort()
    return Outcome(name, closed, time.monotonic() - t0, received, local)


async def send_and_watch(
    name: str, host: str, port: int, data: bytes, *, half_close: bool = False, wait_s: float = 30.0
) -> Outcome:
    """Send `data` (tolerating a server that closes mid-send) and wait until the server closes."""
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        writer.write(data)
        await writer.drain()
        if half_close:
            writer.write_eof()
    return await _until_closed(name, reader, writer, t0, wait_s)


def random_bytes(n: int = 64 * 1024, seed: int = 7) -> bytes:
    data = bytearray(random_stream(seed, n))
    data[0] = ord("X")  # never accidentally a valid version byte
    return bytes(data)


def random_stream(seed: int, n: int) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def truncated_frame() -> bytes:
    """A window of 2 whose second data frame declares 1000 bytes but carries 10."""
    whole = encode_window([b'{"message":"truncated-1"}', b'{"message":"' + b"t" * 980 + b'"}'])
    return whole[: len(whole) - 990]


def wrong_versions() -> dict[str, bytes]:
    body = encode_window([b'{"message":"v"}'])
    return {
        "version_1": b"1" + body[1:],  # Lumberjack v1
        "version_3": b"3" + body[1:],
        "version_nul": b"\0" + body[1:],
        "http_request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "tls_client_hello_to_plain": bytes.fromhex("16030100a5010000a10303") + os.urandom(32),
        "unknown_frame_type": b"2Z" + b"\0" * 8,
    }


@functools.cache
def decompression_bomb(expands_to: int = GIB) -> bytes:
    """A window of 1 whose one compressed frame (about 1 MiB) inflates to `expands_to` bytes: a data
    frame header declaring that size, then zeros."""
    c = zlib.compressobj(9)
    parts = [c.compress(b"2J" + struct.pack(">II", 1, expands_to - 10))]
    block = b"\0" * (1 << 20)
    for _ in range(expands_to // len(block)):
        parts.append(c.compress(block))
    parts.append(c.flush())
    compressed = b"".join(parts)
    return b"2W" + struct.pack(">I", 1) + b"2C" + struct.pack(">I", len(compressed)) + compressed


def oversized_window() -> bytes:
    return b"2W" + struct.pack(">I", 0xFFFFFFFF)


def oversized_frame() -> bytes:
    """A data frame header declaring 4 GiB - 1 bytes."""
    return b"2W" + struct.pack(">I", 1) + b"2J" + struct.pack(">II", 1, 0xFFFFFFFF)


def raise_nofile(want: int) -> int:
    """Raise this process's soft open-files limit towards `want` (up to the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_idle(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` connections that never send a byte (plain blocking sockets, opened from any thread)."""
    raise_nofile(count + 1024)
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=10)
        socks.append(s)
    return socks


def count_closed_by_server(socks: list[socket.socket]) -> int:
    """How many of `socks` the server has closed (EOF or reset seen without blocking)."""
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


async def slow_drip(host: str, port: int, *, interval: float = 0.2, wait_s: float = 60.0) -> Outcome:
    """A valid window sent one byte every `interval` s: never idle, never finishing a window in time."""
    data = encode_window([b'{"message":"' + b"d" * 500 + b'"}'] * 4)
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)

    async def drip() -> None:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError, OSError):
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
                await asyncio.sleep(interval)

    dripper = asyncio.ensure_future(drip())
    try:
        return await _until_closed("slow_drip", reader, writer, t0, wait_s)
    finally:
        dripper.cancel()
        with contextlib.suppress(BaseException):
            await dripper
