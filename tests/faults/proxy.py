"""A TCP proxy for fault tests: real loopback sockets between a client and its server, with faults.

It runs its own event loop in a thread so it keeps forwarding while the test blocks (waiting on a
subprocess, sleeping, polling OpenSearch). Faults:

* `cut()`: abort every open connection now (RST, as a dropped NAT entry or a dead node looks);
* `cut_after(n)`: abort every connection once `n` more client->server bytes have passed, i.e. in the
  middle of a window when `n` is smaller than a window;
* `pause()` / `resume()`: stop / restart forwarding in both directions (data waits in the kernel);
* `refuse(True)`: accept and immediately abort new connections (a server that is not there yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = 0
        self.connections_total = 0
        self.cuts = 0
        self.bytes_up = 0  # client -> server
        self.bytes_down = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None
        self._refusing = False
        self._cut_at: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faults ----------------------------------------------------------------------------------------
    @property
    def open_connections(self) -> int:
        return len(self._open) // 2

    def cut(self) -> int:
        """Abort every open connection; returns how many client connections were cut."""
        return self._call(self._cut())

    def cut_after(self, nbytes: int) -> None:
        """Abort every connection once `nbytes` more bytes went from client to server."""
        self._call(self._arm(nbytes))

    def disarm(self) -> None:
        """Cancel a pending `cut_after`."""
        self._call(self._disarm())

    def pause(self) -> None:
        self._call(self._set_flowing(False))

    def resume(self) -> None:
        self._call(self._set_flowing(True))

    def refuse(self, on: bool) -> None:
        self._refusing = on

    # -- internals -------------------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, self.listen_host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut()

    async def _set_flowing(self, on: bool) -> None:
        assert self._flowing is not None
        if on:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _arm(self, nbytes: int) -> None:
        self._cut_at = self.bytes_up + nbytes

    async def _disarm(self) -> None:
        self._cut_at = None

    async def _cut(self) -> int:
        n = self.open_connections
        for w in list(self._open):
            w.transport.abort()
        self._open.clear()
        if n:
            self.cuts += 1
        return n

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_total += 1
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer, up=True), self._pipe(up_reader, writer, up=False))
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
        assert self._flowing is not None
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await self._flowing.wait()
                data = await src.read(_CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # paused while reading: hold the chunk
                if dst.transport.is_closing():
                    break
                if up:
                    self.bytes_up += len(data)
                    if self._cut_at is not None and self.bytes_up >= self._cut_at:
                        self._cut_at = None
                        # forward part of the chunk so the server sees a frame begin, then cut
                        dst.write(data[: len(data) // 2])
                        await self._cut()
                        return
                else:
                    self.bytes_down += len(data)
                dst.write(data)
                await dst.drain()
        # half-close propagation: the peer finished sending
        with contextlib.suppress(OSError, RuntimeError):
            if dst.can_write_eof() and not dst.transport.is_closing():
                dst.write_eof()
