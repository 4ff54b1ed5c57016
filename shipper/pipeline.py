"""From harvested events to acknowledged windows: the queue between reading and sending.

`WindowAssembler` (pure) packs events of many files into windows of `window_size` events, remembers
per file the offset the file reaches once the window is acknowledged, and opens each window in the
checkpoints the moment it is sealed. A window that was built but never acknowledged therefore holds
back every later window's checkpoint (they are applied in order), whatever happens to it: a shutdown
can never move a checkpoint past an event that was not sent. Given the output's `WindowWriter`
factory, it encodes (and compresses) each batch of events as it is added, so a window is never held as
events and as its encoding, nor as its whole uncompressed body when compressed.

`Sender` owns the output (Filebeat's queue + output, aiokafka's accumulator + sender): readers put
whole windows into a bounded queue and wait only when it is full; the sender keeps up to
`max_pending_windows` in flight, retries, and applies acks to the checkpoints in window order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, islice

from logship.backoff import Backoff
from logship.lumberjack.client import ClientClosed, EncodedWindow
from logship.lumberjack.codec import WindowWriter
from shipper.registry import Checkpoints, Position

log = logging.getLogger("logship.shipper.pipeline")


@dataclass(slots=True)
class Window:
    # Its events: in `writer`, already encoded, when the assembler has the output's writer; in `events`
    # otherwise (a custom send function takes them as they are).
    events: list[bytes] = field(default_factory=list)
    writer: WindowWriter | None = None
    count: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    wid: int = -1  # its place in the checkpoints' order, once sealed
    nbytes: int = 0  # bytes of its events (counted only with a byte limit)
    # Once queued for sending: the window as the output will write it (`writer` finished).
    wire: EncodedWindow | None = None


class WindowAssembler:
    """Seals a window at `size` events or, with `max_bytes`, once the next event would take its events
    past that many bytes (a single larger event gets a window of its own): long lines never make a
    window the output must hold, compress and resend as one huge frame."""

    def __init__(
        self,
        size: int,
        checkpoints: Checkpoints,
        max_bytes: int = 0,
        writer: Callable[[], WindowWriter] | None = None,
    ) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._checkpoints = checkpoints
        self._writer = writer
        self._window = self._new()

    def __len__(self) -> int:
        return self._window.count

    def _new(self) -> Window:
        return Window(writer=self._writer()) if self._writer is not None else Window()

    def add(
        self, key: str, path: str, fp: tuple[int, str], events: list[bytes], resumes: list[int], real: str = ""
    ) -> list[Window]:
        """Add one file's events (in file order); return the windows they fill, sealed."""
        full: list[Window] = []
        i, n = 0, len(events)
        while i < n:
            w = self._window
            j = min(n, i + self._size - w.count)
            bytes_full = False
            if self._max_bytes:
                ends = list(accumulate(map(len, islice(events, i, j))))
                fit = bisect_right(ends, self._max_bytes - w.nbytes)
                if fit < len(ends):
                    bytes_full = True
                    fit = fit or (0 if w.count else 1)
                    j = i + fit
                if fit:
                    w.nbytes += ends[fit - 1]
            if j > i:
                part = events[i:j] if i or j != n else events
                if w.writer is not None:
                    w.writer.add(part)
                else:
                    w.events.extend(part)
                w.count += j - i
                w.positions[key] = Position(path, resumes[j - 1], fp[0], fp[1], real)
            i = j
            if bytes_full or w.count >= self._size:
                full.append(self._seal(w))
                self._window = self._new()
        return full

    def skip(self, key: str, pos: Position) -> None:
        """Bytes before `pos` will never be read (counted as lost): the checkpoint moves there once every
        window before this one is acknowledged, never before."""
        self._window.positions[key] = pos

    def take(self) -> Window | None:
        """The partly filled window, sealed, if any (sent when the files have nothing more to read now)."""
        w = self._window
        if not w.count and not w.positions:
            return None
        self._window = self._new()
        return self._seal(w)

    def rekey(self, old: str, new: str) -> None:
        """A file's generation was retired under a new key (see `Checkpoints.retire`)."""
        if old in self._window.positions:
            self._window.positions[new] = self._window.positions.pop(old)

    def _seal(self, w: Window) -> Window:
        w.wid = self._checkpoints.open_window(w.positions)
        return w


SendFn = Callable[[Sequence[bytes] | EncodedWindow], Awaitable[None]]


class Sender:
    def __init__(
        self,
        send: SendFn,
        checkpoints: Checkpoints,
        max_pending_windows: int,
        max_queued_windows: int,
        on_acked: Callable[[int], None] = lambda n: None,
        on_sent: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._send = send
        self._checkpoints = checkpoints
        self._slots = asyncio.Semaphore(max_pending_windows)
        self._max_queued = max(1, max_queued_windows)
        self._queue: deque[Window] = deque()
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_acked = on_acked
        self._on_sent = on_sent
        self._runner: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="shipper-sender")

    async def put(self, window: Window, force: bool = False) -> None:
        """Queue a sealed window; waits while the queue is full (`force`: at shutdown, never waits)."""
        if window.writer is not None:
            window.wire = EncodedWindow(window.writer.finish(), window.count)
            window.writer = None
        while not force and len(self._queue) >= self._max_queued:
            self._space.clear()
            await self._space.wait()
        self._queue.append(window)
        self._ready.set()

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            await self._slots.acquire()
            window = self._queue.popleft()
            self._space.set()
            task = asyncio.create_task(self._deliver(window))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, window: Window) -> None:
        backoff = Backoff(1.0, 30.0)
        try:
            while True:
                try:
                    self._on_sent(window.count)
                    await self._send(window.wire if window.wire is not None else window.events)
                    break
                except ClientClosed:
                    return  # shutting down: the window stays unacknowledged and is resent after restart
                except Exception as exc:
                    # the client retries connection failures itself; anything else is logged and retried
                    delay = backoff.next()
                    log.error("sending a window failed (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
            self._checkpoints.ack(window.wid, time.time())
            self._on_acked(window.count)
        finally:
            self._slots.release()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109  (bounded wait is the point)
        """Wait up to `timeout` seconds until every queued window is sent and acknowledged."""
        deadline = time.monotonic() + timeout
        while self._queue or self._tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=min(left, 0.1))
            else:
                await asyncio.sleep(min(left, 0.01))  # the runner is handing the next window out
        return True

    async def close(self) -> None:
        """Stop sending; windows not acknowledged stay below the checkpoints and are resent at the next start."""
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._runner = None
