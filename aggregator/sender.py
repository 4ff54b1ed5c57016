"""The bulk writer: packs items from every connection into batches and keeps `concurrency` requests
in flight, retrying until each item is indexed or dead-lettered.

Batching: full batches (max_bytes / max_docs) go out at once; when a free request slot takes a
partial batch is the accumulator's rule (`Accumulator.flush_in`). So a light load is acknowledged in
milliseconds, and under a heavy one batches fill up while the slots are busy.

Retries: `retry.py` decides what a failure or an answer means (resend after a capped, jittered
backoff, forever; resend only the rejected items; split; dead-letter); this module only acts on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aggregator.accumulator import Accumulator, BulkItem, settle_items
from aggregator.bulk import body_of
from aggregator.deadletter import DeadLetterFile
from aggregator.metrics import Metrics
from aggregator.retry import Action, after_failure, sort_items, split
from aggregator.sink import Sink, SinkError
from logship.backoff import Backoff

log = logging.getLogger(__name__)


class Sender:
    def __init__(
        self,
        sink: Sink,
        accumulator: Accumulator,
        *,
        concurrency: int,
        backoff: tuple[float, float],
        dead_letter: DeadLetterFile,
        metrics: Metrics,
        on_settled: Callable[[int], None],
    ) -> None:
        self.sink = sink
        self.acc = accumulator
        self.concurrency = concurrency
        self.backoff = backoff
        self.dead_letter = dead_letter
        self.metrics = metrics
        self._on_settled = on_settled
        self._ready: deque[list[BulkItem]] = deque()
        self._wake = asyncio.Event()
        self._sending = 0
        self._draining = False
        self._stopping = False
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._worker(n)) for n in range(self.concurrency)]

    def submit(self, items: list[BulkItem]) -> None:
        """Queue encoded items (never blocks: the pipeline bounds how many are outstanding)."""
        was_empty = len(self.acc) == 0
        self._ready.extend(self.acc.add_many(items, time.monotonic()))
        if self._ready or was_empty:
            self._wake.set()

    def drain(self) -> None:
        """From now on send partial batches at once (shutdown: flush everything)."""
        self._draining = True
        self._wake.set()

    async def stop(self) -> None:
        """Stop the workers once nothing is left to send (or at once when cancelled by a timeout)."""
        self._draining = True
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.gather(*self._workers)
        finally:
            for w in self._workers:
                w.cancel()

    def cancel(self) -> None:
        """Abandon what is unsent (shutdown timeout): those windows stay unacknowledged."""
        for w in self._workers:
            w.cancel()

    async def _next_batch(self) -> list[BulkItem] | None:
        while True:
            if self._ready:
                return self._ready.popleft()
            wait = self.acc.flush_in(time.monotonic(), in_flight=self._sending, draining=self._draining)
            if wait == 0.0:
                return self.acc.take()
            if wait is None and self._stopping:
                return None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    async def _worker(self, n: int) -> None:
        while True:
            batch = await self._next_batch()
            if batch is None:
                return
            self._sending += 1
            try:
                await self._deliver(batch)
            finally:
                self._sending -= 1
                self._wake.set()  # an idle slot may now flush a partial batch

    async def _deliver(self, batch: list[BulkItem]) -> None:
        backoff = Backoff(*self.backoff)
        pending = [batch]
        while pending:
            items = pending.pop()
            started = time.monotonic()
            try:
                response = await self.sink.bulk(body_of(items), len(items))
            except SinkError as exc:
                self.metrics.bulk_latency.observe(time.monotonic() - started)
                self.metrics.bulk_requests.labels("failed").inc()
                action = after_failure(exc.status, len(items))
                if action is Action.SPLIT:
                    log.warning("bulk of %d events refused as a whole (%s); splitting it", len(items), exc)
                    pending.extend(split(items))
                    continue
                if action is Action.DEAD_LETTER:
                    reason = {"type": "request_rejected", "reason": str(exc)}
                    await self._dead_letter([(items[0], exc.status, reason)])
                    continue
                delay = backoff.next()
                self.metrics.retried.labels(str(exc.status) if exc.status else "connection").inc(len(items))
                log.warning("bulk of %d events failed (%s); retrying in %.1fs", len(items), exc, delay)
                pending.append(items)
                await asyncio.sleep(delay)
                continue
            self.metrics.bulk_latency.observe(time.monotonic() - started)
            self.metrics.bulk_docs.observe(len(items))
            outcome = sort_items(items, response)
            if outcome.dead:
                await self._dead_letter(outcome.dead)
            self._settle(outcome.delivered, duplicates=outcome.conflicts)
            if outcome.retry:
                self.metrics.bulk_requests.labels("partial").inc()
                for status, count in outcome.retry_statuses.items():
                    self.metrics.retried.labels(str(status)).inc(count)
                delay = backoff.next()
                log.warning(
                    "%d of %d events rejected for now (%s); resending them in %.1fs",
                    len(outcome.retry),
                    len(items),
                    ", ".join(f"{s}: {c}" for s, c in sorted(outcome.retry_statuses.items())),
                    delay,
                )
                pending.append(outcome.retry)
                await asyncio.sleep(delay)
            else:
                self.metrics.bulk_requests.labels("ok").inc()
                backoff.reset()

    async def _dead_letter(self, dead: list[tuple[BulkItem, int, Any]]) -> None:
        records = [(item.source, item.index, status, error) for item, status, error in dead]
        while True:
            try:
                # the fsync must not stall every connection's acks: it runs in a thread
                await asyncio.to_thread(self.dead_letter.write, records)
                break
            except OSError as exc:
                # never ack an event that is neither indexed nor written down; the window stays open
                log.error("cannot write dead-letter file %s: %s; retrying", self.dead_letter.path, exc)
                await asyncio.sleep(1.0)
        first = dead[0]
        log.warning(
            "%d events dead-lettered to %s (first: index %s, status %d, %s)",
            len(dead),
            self.dead_letter.path,
            first[0].index,
            first[1],
            first[2],
        )
        self.metrics.dead_lettered.inc(len(dead))
        for item, _, _ in dead:
            item.ticket.dead_lettered += 1
        self._settle_only([item for item, _, _ in dead])

    def _settle(self, items: list[BulkItem], duplicates: int = 0) -> None:
        if not items:
            return
        self.metrics.indexed.inc(len(items))
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        self._settle_only(items)

    def _settle_only(self, items: list[BulkItem]) -> None:
        windows = settle_items(items)
        if windows:
            self.metrics.windows_acked.inc(windows)
        self._on_settled(len(items))
