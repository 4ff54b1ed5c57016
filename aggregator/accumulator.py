"""Batching bookkeeping (pure logic, no I/O, no clock of its own).

Each received window becomes a `Ticket` counting its events that OpenSearch has not yet settled
(indexed, already present, or dead-lettered); each event becomes a `BulkItem` (its pre-encoded action
and source lines) that remembers its ticket. The `Accumulator` packs items from all connections into
bulk batches bounded by bytes and documents, and knows how long its oldest item has waited.
"""

from __future__ import annotations

from collections.abc import Callable


class Ticket:
    """One window: `settle(n)` as its events are settled; `on_settled` runs when none remain."""

    __slots__ = ("dead_lettered", "on_settled", "pending", "size")

    def __init__(self, size: int, on_settled: Callable[[], None] | None = None) -> None:
        self.size = size
        self.pending = size
        self.dead_lettered = 0
        self.on_settled = on_settled

    def settle(self, n: int = 1) -> bool:
        """Mark `n` events settled; True exactly once, when the last one is."""
        if n <= 0:
            return False
        if n > self.pending:
            raise ValueError(f"settling {n} events of a window with {self.pending} pending")
        self.pending -= n
        if self.pending == 0:
            if self.on_settled is not None:
                self.on_settled()
            return True
        return False

    @property
    def done(self) -> bool:
        return self.pending == 0


class BulkItem:
    """One event, encoded once: its `create` action line and document line in one bytes object
    (one allocation, one part of the request body); `split` is where the document starts."""

    __slots__ = ("data", "index", "nbytes", "split", "ticket")

    def __init__(self, data: bytes, split: int, index: str, ticket: Ticket) -> None:
        self.data = data
        self.split = split
        self.index = index
        self.ticket = ticket
        self.nbytes = len(data)

    @classmethod
    def of(cls, action: bytes, source: bytes, index: str, ticket: Ticket) -> BulkItem:
        return cls(action + source, len(action), index, ticket)

    @property
    def source(self) -> bytes:
        """The document line (what the dead-letter file keeps)."""
        return self.data[self.split :]


def settle_items(items: list[BulkItem]) -> int:
    """Settle each item's ticket, grouping consecutive items of one window; returns windows completed."""
    completed = 0
    i, n = 0, len(items)
    while i < n:
        ticket = items[i].ticket
        j = i + 1
        while j < n and items[j].ticket is ticket:
            j += 1
        if ticket.settle(j - i):
            completed += 1
        i = j
    return completed


class Accumulator:
    """Packs items into batches of at most `max_docs` items and (unless one item is larger) `max_bytes`,
    and decides when a partial batch goes out (`flush_in`)."""

    def __init__(self, max_bytes: int, max_docs: int, max_delay: float = 1.0) -> None:
        if max_bytes <= 0 or max_docs <= 0:
            raise ValueError("max_bytes and max_docs must be positive")
        if max_delay < 0:
            raise ValueError("max_delay must not be negative")
        self.max_bytes = max_bytes
        self.max_docs = max_docs
        self.max_delay = max_delay
        self._items: list[BulkItem] = []
        self._bytes = 0
        self.oldest: float | None = None  # when the first item of the open batch was added

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def add(self, item: BulkItem, now: float) -> list[BulkItem] | None:
        """Add one item; returns a full batch when this item closes one, else None."""
        size = item.nbytes
        full: list[BulkItem] | None = None
        if self._items and self._bytes + size > self.max_bytes:
            full = self.take()
        if not self._items:
            self.oldest = now
        self._items.append(item)
        self._bytes += size
        if full is None and (len(self._items) >= self.max_docs or self._bytes >= self.max_bytes):
            full = self.take()
        return full

    def add_many(self, items: list[BulkItem], now: float) -> list[list[BulkItem]]:
        """Add items in order; returns the batches they completed (same rules as `add`, inlined: this
        runs once per event)."""
        out: list[list[BulkItem]] = []
        max_bytes, max_docs = self.max_bytes, self.max_docs
        open_items, nbytes = self._items, self._bytes
        if not open_items:
            self.oldest = now
        for item in items:
            size = item.nbytes
            if open_items and nbytes + size > max_bytes:
                out.append(open_items)
                open_items, nbytes = [], 0
                self.oldest = now
            open_items.append(item)
            nbytes += size
            if len(open_items) >= max_docs or nbytes >= max_bytes:
                out.append(open_items)
                open_items, nbytes = [], 0
                self.oldest = now
        self._items, self._bytes = open_items, nbytes
        if not open_items:
            self.oldest = None
        return out

    def flush_in(self, now: float, *, in_flight: int, draining: bool) -> float | None:
        """Seconds until a free request slot should take the open (partial) batch: 0 for now, None
        when there is nothing to send. Full batches never wait here: `add`/`add_many` return them.

        Now when draining (shutdown), when no request is in flight (nobody would come back to fill
        the batch: the shippers are waiting for acks), when it is at least a quarter full (an idle
        slot is worse for throughput than a smaller bulk: OpenSearch's ceiling is reached by keeping
        every slot busy), or once it has waited `max_delay`; otherwise when `max_delay` is reached.
        """
        if not self._items:
            return None
        age = self.age(now)
        if (
            draining
            or in_flight == 0
            or age >= self.max_delay
            or len(self._items) * 4 >= self.max_docs
            or self._bytes * 4 >= self.max_bytes
        ):
            return 0.0
        return self.max_delay - age

    def age(self, now: float) -> float:
        """How long the open batch has waited (0 when empty)."""
        return 0.0 if self.oldest is None else max(0.0, now - self.oldest)

    def take(self) -> list[BulkItem]:
        """Close the open batch and return it (possibly empty)."""
        items = self._items
        self._items = []
        self._bytes = 0
        self.oldest = None
        return items
