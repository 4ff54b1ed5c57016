"""Where bulk bodies go: OpenSearch's `_bulk`, or a blackhole that accepts everything (benchmarks).

A sink sends one pre-built NDJSON body and returns the parsed response, or raises `SinkError` saying
whether the whole request may be retried. It owns no retry policy; the sender does.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any, Protocol

from opensearchpy import AsyncOpenSearch, ConnectionTimeout, TransportError
from opensearchpy import ConnectionError as OSConnectionError

from aggregator.auth import Redactor
from aggregator.bulk import FILTER_PATH, is_retryable

# Bodies below this are compressed inline; larger ones in a thread (zlib releases the GIL).
_GZIP_INLINE_MAX = 64 * 1024


class SinkError(Exception):
    """A whole bulk request failed. `status` is the HTTP status (0: no answer, connection failed)."""

    def __init__(self, message: str, status: int, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


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
    def __init__(self, client: AsyncOpenSearch, redact: Redactor, *, gzip_bodies: bool = False) -> None:
        self.client = client
        self.redact = redact
        self.gzip_bodies = gzip_bodies

    async def bulk(self, body: bytes, docs: int) -> Any:
        headers = {"content-type": "application/x-ndjson"}
        if self.gzip_bodies:
            if len(body) > _GZIP_INLINE_MAX:
                body = await asyncio.to_thread(gzip.compress, body, 1)
            else:
                body = gzip.compress(body, 1)
            headers["content-encoding"] = "gzip"
        try:
            return await self.client.transport.perform_request(
                "POST", "/_bulk", params={"filter_path": FILTER_PATH}, body=body, headers=headers
            )
        except ConnectionTimeout:  # OpenSearch may be paused, overloaded or restarting
            raise SinkError("OpenSearch did not answer within aggregator.opensearch.timeout", 0, True) from None
        except OSConnectionError as exc:
            raise SinkError(self.redact(f"cannot reach OpenSearch: {describe(exc)}"), 0, True) from None
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            reason = self.redact(_reason(exc))
            raise SinkError(f"OpenSearch answered {status}: {reason}", status, _request_retryable(status)) from None
        except Exception as exc:  # e.g. an unreadable response: keep the events and try again
            raise SinkError(self.redact(f"bulk request failed: {type(exc).__name__}: {exc}"), 0, True) from None

    async def close(self) -> None:
        await self.client.close()
        # Transport.close() skips connections currently marked dead; close those too.
        pool = getattr(self.client.transport, "connection_pool", None)
        for conn in getattr(pool, "orig_connections", ()):
            await conn.close()


def _request_retryable(status: int) -> bool:
    # 401/403/404 on the whole request are configuration or permission problems the operator can fix
    # without restarting us: keep the events and keep trying. 400/413 mean this body cannot succeed.
    # 0 is a failure without a status: retried, never dead-lettered.
    return status not in (400, 413) and (status == 0 or is_retryable(status) or 400 <= status < 500)


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
