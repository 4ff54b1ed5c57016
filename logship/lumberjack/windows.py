"""Bookkeeping of the windows one connection has in flight (sans-IO, used by the server).

Windows are admitted in the order they arrive and may finish in any order, but a window's final ack
(its highest seq) goes out only once every earlier window was acked: the writer matches acks to its
windows in order. A failed window is never acked, nor is any window after it: the connection must be
closed so that the writer resends them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

_PENDING, _DONE, _FAILED = 0, 1, 2


@dataclass
class _Window:
    ticket: int
    last_seq: int
    nbytes: int
    state: int = _PENDING


class WindowScheduler:
    """Windows admitted and not yet acked, with the bounds that stop a connection from reading more.

    `max_windows`: at most this many unacked windows. `max_bytes` (0 = no bound): no new window once
    the unacked windows' payloads reach this, so a connection holds at most about twice `max_bytes`
    (the unacked windows plus the one being received) however many windows it may have in flight.
    """

    def __init__(self, max_windows: int, max_bytes: int = 0) -> None:
        if max_windows < 1:
            raise ValueError("max_windows must be at least 1")
        self.max_windows = max_windows
        self.max_bytes = max_bytes
        self._windows: deque[_Window] = deque()
        self._by_ticket: dict[int, _Window] = {}
        self._next_ticket = 0
        self.pending_bytes = 0

    @property
    def pending(self) -> int:
        """Windows admitted and not yet acked (in the handler, or done and waiting for an earlier one)."""
        return len(self._windows)

    @property
    def failed(self) -> bool:
        return any(w.state == _FAILED for w in self._windows)

    @property
    def failed_head(self) -> int | None:
        """The ticket of the oldest unacked window if it failed: nothing more can be acked, close."""
        if self._windows and self._windows[0].state == _FAILED:
            return self._windows[0].ticket
        return None

    def has_room(self) -> bool:
        """Whether the connection may hand one more window to the handler."""
        if len(self._windows) >= self.max_windows or self.failed:
            return False
        return not self.max_bytes or self.pending_bytes < self.max_bytes

    def admit(self, last_seq: int, nbytes: int) -> int:
        """Record a complete window handed to the handler; returns its ticket."""
        if not self.has_room():
            raise RuntimeError("admit() without room: the reader must wait for has_room()")
        window = _Window(self._next_ticket, last_seq, nbytes)
        self._next_ticket += 1
        self._windows.append(window)
        self._by_ticket[window.ticket] = window
        self.pending_bytes += nbytes
        return window.ticket

    def finish(self, ticket: int, ok: bool) -> None:
        """The handler of window `ticket` returned (ok) or raised (not ok)."""
        window = self._by_ticket[ticket]
        if window.state != _PENDING:
            raise RuntimeError(f"window {ticket} finished twice")
        window.state = _DONE if ok else _FAILED

    def take_acks(self) -> list[int]:
        """The final acks (last seqs) that may go out now, in window order; those windows leave."""
        acks: list[int] = []
        windows = self._windows
        while windows and windows[0].state == _DONE:
            window = windows.popleft()
            del self._by_ticket[window.ticket]
            self.pending_bytes -= window.nbytes
            acks.append(window.last_seq)
        return acks
