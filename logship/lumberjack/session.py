"""The writer's side of one Lumberjack connection, sans-IO: which windows are on the wire, which acks
close them, and when the reader has been silent too long.

The asyncio client (`client.py`) moves bytes and time in and out; everything it has to decide about
acks lives here, so the matching rules are tested without sockets. Rules of the protocol (SPEC §3):
sequence numbers restart at 1 in each window, windows are acked in the order they were written, an ack
below a window's size is a keepalive (progress, or `A 0` while the reader works), and an ack for the
last event closes the window.

A connection may have a time to live (Filebeat's `ttl`): once it is over, no new window goes out on
it, and as soon as the windows on the wire are acked the connection is `finished` and the client
closes it and connects again (so a load balancer or a re-resolved name can send it elsewhere). Nothing
is dropped or resent for a TTL: the close only ever happens with nothing in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from logship.lumberjack.codec import AckDecoder, ProtocolError


class Sendable(Protocol):
    @property
    def chunks(self) -> Sequence[bytes]: ...

    @property
    def count(self) -> int: ...


W = TypeVar("W", bound=Sendable)


class WriterSession(Generic[W]):
    """Windows written on one connection and not yet acknowledged, oldest first."""

    def __init__(self, timeout: float, max_in_flight: int, ttl: float = 0.0, opened: float = 0.0) -> None:
        self.timeout = timeout
        self.max_in_flight = max(1, max_in_flight)
        self.ttl = ttl  # 0: the connection lives until it fails
        self.retire_at: float | None = opened + ttl if ttl > 0 else None
        self.retiring = False  # no new window: close once the ones in flight are acked
        self.in_flight: deque[W] = deque()
        self.deadline: float | None = None  # when silence from the reader means the connection is dead
        self.heard = False  # any ack at all on this connection (tells a refused TLS client apart)
        self._acks = AckDecoder()

    @property
    def has_room(self) -> bool:
        return not self.retiring and len(self.in_flight) < self.max_in_flight

    @property
    def finished(self) -> bool:
        """Retiring and nothing unacked: the connection can be closed without resending anything."""
        return self.retiring and not self.in_flight

    def retire(self) -> None:
        """Take no new window (the TTL is over, or the endpoint is no longer wanted)."""
        self.retiring = True

    def tick(self, now: float) -> None:
        """Let the clock retire the connection once its TTL is over."""
        if self.retire_at is not None and now >= self.retire_at:
            self.retiring = True

    def wake_at(self) -> float | None:
        """When the client must look again even if nothing arrives: the ack deadline or the TTL."""
        times = [t for t in (self.deadline, None if self.retiring else self.retire_at) if t is not None]
        return min(times) if times else None

    def write(self, window: W, now: float) -> Sequence[bytes]:
        """Put a window on the wire: the bytes to write, in chunks."""
        if self.retiring:
            raise RuntimeError("write() on a retiring connection: check has_room first")
        self.in_flight.append(window)
        if self.deadline is None:
            self.deadline = now + self.timeout
        return window.chunks

    def receive(self, data: bytes, now: float) -> list[W]:
        """Bytes from the reader: the windows they acknowledge completely, in order.

        Any ack, keepalive or not, is a sign of life and pushes the deadline out. Raises ProtocolError for
        an ack the writer cannot have asked for.
        """
        done: list[W] = []
        for seq in self._acks.feed(data):
            self.heard = True
            if not self.in_flight:
                if seq == 0:
                    continue  # a keepalive that crossed the last final ack
                raise ProtocolError(f"ack {seq} with no window outstanding", "unexpected_ack")
            head = self.in_flight[0]
            if seq > head.count:
                raise ProtocolError(f"ack {seq} beyond the window of {head.count} events", "unexpected_ack")
            self.deadline = now + self.timeout
            if seq == head.count:
                done.append(self.in_flight.popleft())
        if not self.in_flight:
            self.deadline = None
        return done

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def take_unacked(self) -> list[W]:
        """The connection is gone: its unacknowledged windows, oldest first, to be resent elsewhere."""
        out = list(self.in_flight)
        self.in_flight.clear()
        self.deadline = None
        return out
