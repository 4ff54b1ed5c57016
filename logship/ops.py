"""The operations endpoint both processes serve: Prometheus `/metrics`, `/healthz` and `/readyz`.

Liveness (`/healthz`) says the event loop answers; readiness (`/readyz`) asks the owner (the shipper:
its registry is writable; the aggregator: OpenSearch answers) through a callback.

A plain asyncio server rather than aiohttp: the shipper runs on every node within a small memory
limit, and importing aiohttp alone costs about 11 MiB of RSS. Only what probes and Prometheus send is
understood: `GET <path> HTTP/1.x`, one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

MAX_REQUEST_HEAD = 16 * 1024
REQUEST_TIMEOUT = 10.0

ReadyCheck = Callable[[], Awaitable[tuple[bool, str]]]


async def _always_ready() -> tuple[bool, str]:
    return True, "ok"


class OpsServer:
    """HTTP server for metrics and probes; bind to port 0 in tests and read `.port`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        ready: ReadyCheck = _always_ready,
        healthy: ReadyCheck = _always_ready,
    ) -> None:
        self._registry = registry
        self._host = host
        self.port = port
        self._checks = {"/healthz": healthy, "/readyz": ready}
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("metrics and health on http://%s:%d (/metrics /healthz /readyz)", self._host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            status, ctype, body = await self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(
            status, "Service Unavailable"
        )
        allow = "Allow: GET, HEAD\r\n" if status == 405 else ""
        # HEAD: the same status and headers as GET (Content-Length included), and no body
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"{allow}Connection: close\r\n\r\n".encode()
            + (b"" if head.startswith(b"HEAD ") else body)
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _answer(self, head: bytes) -> tuple[int, str, bytes]:
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[1].startswith(b"/"):
            return 400, "text/plain", b"bad request: expected GET <path> HTTP/1.1\n"
        method, target = parts[0], parts[1].decode("latin-1").split("?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"only GET and HEAD\n"
        if target == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        check = self._checks.get(target)
        if check is None:
            return 404, "text/plain", b"not found: try /metrics, /healthz or /readyz\n"
        try:
            ok, reason = await check()
        except Exception as exc:  # a failing check is an unready process, not a crashed endpoint
            ok, reason = False, f"check failed: {exc}"
        return (200 if ok else 503), "text/plain; charset=utf-8", (reason + "\n").encode()
