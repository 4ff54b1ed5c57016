"""Where bulk bodies go: OpenSearch's `_bulk` over the cluster's nodes, or a blackhole that accepts
everything (benchmarks).

A sink sends one pre-built NDJSON body and returns the parsed response, or raises `SinkError` with the
HTTP status (0: no node answered). What a failure means for the events is `retry.py`'s decision, and
the sender acts on it. The OpenSearch sink spreads requests over the healthy nodes (hosts.py): a node
that refuses or drops the connection is taken out, the same body goes to the next healthy node at
once, and a background task probes the nodes that are out until they answer again. With `sniff`, the
node list is refreshed from the cluster (`_nodes/http`) now and then.

A request that times out does not say which node is at fault: a bulk request waits for every shard
copy it writes to, so one paused node stalls requests sent through any node. So a timeout probes every
healthy node at once (`GET /`, `probe_timeout`), and the nodes that do not answer are taken out; the
node whose request timed out stays in if it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from isal import igzip
from opensearchpy import AsyncOpenSearch, ConnectionTimeout, TransportError
from opensearchpy import ConnectionError as OSConnectionError

from aggregator.auth import Redactor
from aggregator.hosts import HostPool
from aggregator.metrics import Metrics
from aggregator.retry import FILTER_PATH

log = logging.getLogger(__name__)

# Bodies below this are compressed inline; larger ones in a thread (ISA-L, like zlib, releases the GIL).
# ISA-L's gzip (python-isal) at level 1: several times zlib's speed for about zlib 1's size.
_GZIP_INLINE_MAX = 64 * 1024


class SinkError(Exception):
    """A whole bulk request failed. `status` is the HTTP status (0: no answer, connection failed)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Unreachable(Exception):
    """This node did not answer (refused, reset, timed out): try another."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Sink(Protocol):
    async def bulk(self, body: bytes, docs: int) -> Any: ...

    async def close(self) -> None: ...


class BlackholeSink:
    """Accepts every document at once: measures the aggregator without OpenSearch."""

    def __init__(self) -> None:
        self.docs = 0
        self.bytes = 0

    async def bulk(self, body: bytes, docs: int) -> Any:
        self.docs += docs
        self.bytes += len(body)
        return {"errors": False}

    async def close(self) -> None:
        return None


class OpenSearchSink:
    """`connect(url)` makes the client of one node; one client per node keeps their pools apart."""

    def __init__(
        self,
        connect: Callable[[str], AsyncOpenSearch],
        hosts: list[str],
        redact: Redactor,
        *,
        gzip_bodies: bool = False,
        sniff_interval: float | None = None,
        probe_timeout: float = 5.0,
        request_timeout: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.connect = connect
        self.redact = redact
        self.gzip_bodies = gzip_bodies
        self.pool = HostPool(hosts)
        self.clients: dict[str, AsyncOpenSearch] = {}
        self.sniff_interval = sniff_interval
        self.probe_timeout = probe_timeout
        # `_bulk?timeout=` is how long OpenSearch waits for a shard's primary before it answers that item
        # 503. At half the client's own timeout, a red index costs only its own items a retry, and the
        # node that coordinated them stays in: it answered.
        self.request_timeout = request_timeout
        self.bulk_params = {"filter_path": FILTER_PATH}
        if request_timeout is not None:
            self.bulk_params["timeout"] = f"{max(1, round(request_timeout * 500))}ms"
        self.metrics = metrics
        self._scheme = hosts[0].split("://", 1)[0] if "://" in hosts[0] else "http"
        self._background: asyncio.Task[None] | None = None
        self._sweeping: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        for url in hosts:
            self._healthy(url, True)

    def _client(self, url: str) -> AsyncOpenSearch:
        client = self.clients.get(url)
        if client is None:
            client = self.clients[url] = self.connect(url)
        return client

    def _healthy(self, url: str, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.node_up.labels(url).set(1 if up else 0)

    def _count(self, url: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.node_requests.labels(url, result).inc()

    async def bulk(self, body: bytes, docs: int) -> Any:
        headers = {"content-type": "application/x-ndjson"}
        if self.gzip_bodies:
            if len(body) > _GZIP_INLINE_MAX:
                body = await asyncio.to_thread(igzip.compress, body, 1)
            else:
                body = igzip.compress(body, 1)
            headers["content-encoding"] = "gzip"
        tried: set[str] = set()
        url = self.pool.pick()
        while True:
            tried.add(url)
            try:
                response = await self._send(url, body, headers)
            except SinkError:
                self._count(url, "answered")  # with an error status: the node is up
                raise
            except _Unreachable as exc:
                self._count(url, "timed_out" if exc.timed_out else "unreachable")
                if exc.timed_out:
                    await self._sweep()
                    if url in self.pool.healthy:
                        log.warning("%s, but it answers a probe: the cluster is slow, not this node", exc)
                else:
                    self._take_out(url, str(exc))
                others = [u for u in self.pool.healthy if u not in tried]
                if not others:
                    raise SinkError(str(exc), 0) from None
                url = others[0]
                log.warning("resending the bulk request to %s", url)
                continue
            self._count(url, "answered")
            if self.pool.succeeded(url):
                self._healthy(url, True)
                log.info("OpenSearch node %s answers again", url)
            return response

    def _take_out(self, url: str, why: str) -> None:
        delay = self.pool.failed(url, time.monotonic())
        self._healthy(url, False)
        self._start_background()
        self._wake.set()
        log.warning("%s; taking it out (probed again in %.1fs)", why, delay)

    async def _sweep(self) -> None:
        """Probe every healthy node at once and take out those that do not answer (one sweep at a time:
        requests that time out together share it)."""
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.create_task(self._probe_healthy())
        await asyncio.shield(self._sweeping)

    async def _probe_healthy(self) -> None:
        urls = self.pool.healthy
        answers = await asyncio.gather(*(self._answers(url) for url in urls))
        for url, answered in zip(urls, answers, strict=True):
            if not answered:
                self._take_out(url, f"OpenSearch node {url} did not answer a probe within {self.probe_timeout:g}s")

    async def _answers(self, url: str) -> bool:
        """Whether the node answers `GET /` within `probe_timeout` (the sweeps' and the background's probe)."""
        try:
            await self._client(url).transport.perform_request("GET", "/", timeout=self.probe_timeout)
        except Exception as exc:
            log.debug("probe of %s failed (%s)", url, type(exc).__name__)
            return False
        return True

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        try:
            return await self._client(url).transport.perform_request(
                # the client's timeout given here, or the transport would take `timeout` out of the params
                "POST",
                "/_bulk",
                params=dict(self.bulk_params),
                body=body,
                headers=headers,
                timeout=self.request_timeout,
            )
        except ConnectionTimeout:  # the node may be paused, overloaded or restarting
            raise _Unreachable(
                f"OpenSearch node {url} did not answer within aggregator.opensearch.timeout", timed_out=True
            ) from None
        except OSConnectionError as exc:
            raise _Unreachable(self.redact(f"cannot reach OpenSearch node {url}: {describe(exc)}")) from None
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            reason = self.redact(_reason(exc))
            raise SinkError(f"OpenSearch answered {status}: {reason}", status) from None
        except Exception as exc:  # e.g. an unreadable response: keep the events and try again
            raise SinkError(self.redact(f"bulk request failed: {type(exc).__name__}: {exc}"), 0) from None

    # -- background: probes of the nodes that are out, sniffing -----------------------------------------
    def start(self) -> None:
        """Start sniffing (if configured); probes start by themselves when a node is taken out."""
        if self.sniff_interval is not None:
            self._start_background()

    def _start_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(self._run_background())

    async def _run_background(self) -> None:
        next_sniff = time.monotonic() if self.sniff_interval is not None else None
        while True:
            now = time.monotonic()
            for url in self.pool.due(now):
                await self._probe(url)
            if next_sniff is not None and now >= next_sniff:
                await self.sniff()
                assert self.sniff_interval is not None
                next_sniff = time.monotonic() + self.sniff_interval
            due = self.pool.next_due()
            if due is None and next_sniff is None:
                return  # every node is back; the next failure starts this again
            wake_at = min(t for t in (due, next_sniff) if t is not None)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.05, wake_at - time.monotonic()))
            except TimeoutError:
                pass

    async def _probe(self, url: str) -> None:
        if not await self._answers(url):
            delay = self.pool.failed(url, time.monotonic())
            log.debug("next probe of %s in %.1fs", url, delay)
            return
        if self.pool.succeeded(url):
            self._healthy(url, True)
            log.info("OpenSearch node %s answers again; sending to it", url)

    async def sniff(self) -> None:
        """Ask a healthy node for the cluster's HTTP addresses and use those nodes from now on."""
        for url in self.pool.healthy or self.pool.urls:
            try:
                info = await self._client(url).transport.perform_request(
                    "GET",
                    "/_nodes/http",
                    params={"filter_path": "nodes.*.http.publish_address"},
                    timeout=self.probe_timeout,
                )
            except Exception as exc:
                log.warning("sniffing the cluster's nodes from %s failed: %s", url, self.redact(type(exc).__name__))
                continue
            found = sniffed_hosts(info, self._scheme)
            if found and set(found) != set(self.pool.urls):
                log.info("OpenSearch nodes from sniffing: %s", ", ".join(found))
                self.pool.replace(found)
                for gone in set(self.clients) - set(found):
                    await close_client(self.clients.pop(gone))
                for new in found:
                    self._healthy(new, new in self.pool.healthy)
            return

    async def close(self) -> None:
        for task in (self._background, self._sweeping):
            if task is not None:
                task.cancel()
        for client in self.clients.values():
            await close_client(client)
        self.clients.clear()


async def close_client(client: AsyncOpenSearch) -> None:
    await client.close()
    # Transport.close() skips connections currently marked dead; close those too.
    pool = getattr(client.transport, "connection_pool", None)
    for conn in getattr(pool, "orig_connections", ()):
        await conn.close()


def sniffed_hosts(info: Any, scheme: str) -> list[str]:
    """Node URLs from a `_nodes/http` answer (publish_address is `host:port` or `name/ip:port`)."""
    out: list[str] = []
    nodes = info.get("nodes") if isinstance(info, dict) else None
    for node in (nodes or {}).values():
        address = node.get("http", {}).get("publish_address") if isinstance(node, dict) else None
        if isinstance(address, str) and address:
            address = address.rsplit("/", 1)[-1]
            out.append(f"{scheme}://{address}")
    return sorted(out)


def describe(exc: OSConnectionError) -> str:
    """The underlying cause of a connection error (aiohttp's own text is often empty)."""
    cause = exc.info if isinstance(exc.info, BaseException) else None
    text = str(exc.error) if exc.error not in (None, "", "N/A") else ""
    if cause is not None:
        text = str(cause) or type(cause).__name__
    return text or type(exc).__name__


def _reason(exc: TransportError) -> str:
    info = exc.info
    if isinstance(info, dict):
        err = info.get("error")
        if isinstance(err, dict):
            return f"{err.get('type')}: {err.get('reason')}"
        if err is not None:
            return str(err)[:500]
    return str(exc.error)[:500]
