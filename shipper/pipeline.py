"""From harvested events to acknowledged windows.

`WindowAssembler` (pure) packs events of many files into windows of `window_size` events and
remembers, per file, the offset the file reaches once the window is acknowledged. `Publisher` sends
windows through the protocol client with at most `max_pending_windows` awaiting an ack: the reader
awaits `publish()`, so when the aggregator is slow reading pauses and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from logship.backoff import Backoff
from logship.lumberjack.client import ClientClosed
from shipper.registry import Checkpoints, Position

log = logging.getLogger("logship.shipper.pipeline")


@dataclass(slots=True)
class Window:
    events: list[bytes] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)


class WindowAssembler:
    def __init__(self, size: int) -> None:
        self._size = size
        self._window = Window()

    def __len__(self) -> int:
        return len(self._window.events)

    def add(self, key: str, path: str, fp: tuple[int, str], events: list[bytes], resumes: list[int]) -> list[Window]:
        """Add one file's events (in file order); return the windows they fill."""
        full: list[Window] = []
        i, n = 0, len(events)
        while i < n:
            w = self._window
            j = min(n, i + self._size - len(w.events))
            w.events.extend(events[i:j] if i or j != n else events)
            w.positions[key] = Position(path, resumes[j - 1], fp[0], fp[1])
            i = j
            if len(w.events) >= self._size:
                full.append(w)
                self._window = Window()
        return full

    def take(self) -> Window | None:
        """The partly filled window, if any (sent when the files have nothing more to read now)."""
        w = self._window
        if not w.events:
            return None
        self._window = Window()
        return w


SendFn = Callable[[Sequence[bytes]], Awaitable[None]]


class Publisher:
    def __init__(
        self,
        send: SendFn,
        checkpoints: Checkpoints,
        max_pending_windows: int,
        on_acked: Callable[[int], None] = lambda n: None,
        on_sent: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._send = send
        self._checkpoints = checkpoints
        self._slots = asyncio.Semaphore(max_pending_windows)
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_acked = on_acked
        self._on_sent = on_sent

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def publish(self, window: Window) -> None:
        """Hand a window to the output; waits while `max_pending_windows` are unacknowledged."""
        await self._slots.acquire()
        wid = self._checkpoints.open_window(window.positions)
        task = asyncio.create_task(self._deliver(wid, window))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, wid: int, window: Window) -> None:
        backoff = Backoff(1.0, 30.0)
        try:
            while True:
                try:
                    self._on_sent(len(window.events))
                    await self._send(window.events)
                    break
                except ClientClosed:
                    return  # shutting down: the window stays unacknowledged and is resent after restart
                except Exception as exc:
                    # the client retries connection failures itself; anything else is logged and retried
                    delay = backoff.next()
                    log.error("sending a window failed (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
            self._checkpoints.ack(wid, time.time())
            self._on_acked(len(window.events))
        finally:
            self._slots.release()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109  (bounded wait is the point)
        """Wait up to `timeout` seconds for every window in flight to be acknowledged."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def cancel(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
