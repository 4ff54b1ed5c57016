"""The operations endpoint both processes serve: Prometheus `/metrics`, `/healthz` and `/readyz`.

Liveness (`/healthz`) says the process's event loop answers; readiness (`/readyz`) asks the owner
(the shipper: its registry is writable; the aggregator: OpenSearch answers) through a callback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

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
        self._port = port
        self._ready = ready
        self._healthy = healthy
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._probe(self._healthy))
        app.router.add_get("/readyz", self._probe(self._ready))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("metrics and health on http://%s:%d (/metrics /healthz /readyz)", self._host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    @staticmethod
    def _probe(check: ReadyCheck) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                ok, reason = await check()
            except Exception as exc:  # a failing check is an unready process, not a crashed endpoint
                ok, reason = False, f"check failed: {exc}"
            return web.Response(status=200 if ok else 503, text=reason + "\n")

        return handler
