"""From a received window to its acknowledgement.

`handle(batch)` is the lumberjack server's window handler: it waits for room in the bounded queue
(`queue_max_events` events received and not yet settled by OpenSearch; while it waits the connection
reads nothing more, so a slow OpenSearch pushes back to the shippers), encodes the events once, hands
them to the sender, and returns only when every one of them is indexed or dead-lettered. The server
sends the final ack when it returns, and keepalives until then.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from aggregator.accumulator import Accumulator, Ticket
from aggregator.bulk import Encoder
from aggregator.config import AggregatorConfig
from aggregator.deadletter import DeadLetterFile
from aggregator.metrics import Metrics
from aggregator.routing import Router
from aggregator.sender import Sender
from aggregator.sink import Sink

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, cfg: AggregatorConfig, sink: Sink, metrics: Metrics) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.router = Router([r.spec() for r in cfg.routes], cfg.default_index, cfg.family_index)
        self.encoder = Encoder(self.router)
        self.max_events = cfg.queue_max_events
        self.outstanding = 0  # events admitted and not yet settled
        self._room = asyncio.Event()
        self.dead_letter = DeadLetterFile(cfg.dead_letter.path, cfg.dead_letter.max_bytes, cfg.dead_letter.keep)
        self.sender = Sender(
            sink,
            Accumulator(cfg.bulk.max_bytes, cfg.bulk.max_docs, cfg.bulk.max_delay),
            concurrency=cfg.bulk.concurrency,
            backoff=(cfg.bulk.backoff.initial, cfg.bulk.backoff.max),
            dead_letter=self.dead_letter,
            metrics=metrics,
            on_settled=self._settled,
        )
        metrics.queue_depth.set_function(lambda: self.outstanding)

    def start(self) -> None:
        self.sender.start()

    async def handle(self, batch: Any) -> None:
        """The window handler: returns once all of `batch.events` are settled (then the ack goes out)."""
        await self.submit(batch.events, release=True)

    async def submit(self, events: list[Any], *, release: bool = False) -> None:
        """Queue `events` (dicts, or `splice.Spliced`) and wait until they are settled. `release`: empty
        the list once encoded, so the events are freed while the window waits for OpenSearch (only the
        bulk bytes are kept)."""
        n = len(events)
        if n == 0:
            return
        self.metrics.events_in.inc(n)
        # A window larger than the whole queue is admitted alone rather than never.
        while self.outstanding > 0 and self.outstanding + n > self.max_events:
            self._room.clear()
            await self._room.wait()
        self.outstanding += n
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def settled() -> None:
            if not done.done():
                done.set_result(None)

        ticket = Ticket(n, settled)
        try:
            items = self.encoder.encode(events, datetime.now(UTC), ticket)
        except BaseException:
            self.outstanding -= n
            self._room.set()
            raise
        if release:
            events.clear()
        self.sender.submit(items)
        # Shielded: a connection that drops must not cancel the delivery of events already queued.
        await asyncio.shield(done)

    def _settled(self, n: int) -> None:
        self.outstanding -= n
        self._room.set()

    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109  (a bounded shutdown step)
        """Send everything queued now; True if all of it settled within `timeout`."""
        self.sender.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.outstanding > 0 and loop.time() < deadline:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                break
        return self.outstanding == 0

    async def close(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Flush, then stop the sender; False if events were still unsettled at the deadline."""
        flushed = await self.flush(timeout)
        if flushed:
            await self.sender.stop()
        else:
            log.error(
                "%d events still not accepted by OpenSearch at shutdown; their windows were not "
                "acknowledged, so the shippers will resend them",
                self.outstanding,
            )
            self.sender.cancel()
        return flushed
